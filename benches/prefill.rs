//! Run with: cargo bench --bench prefill
//! Prefill: prompt tokens into an empty KV cache (ids prefill/<model>/kv<bits>/p<N>).
//! What is benched: MLXBENCH_MODELS, MLXBENCH_KV_BITS, MLXBENCH_PROMPT_TOKENS, MLXBENCH_GEN_TOKENS
//! or mlxbench.toml (see README); by default synthetic tiny Llama models.
mod common;

fn main() {
    common::run(mlxbench::measure::Phase::Prefill);
}
