//! Run with: cargo bench --bench decode
//! Decode: generated tokens after the first with the prompt in the cache (ids decode/<model>/kv<bits>/g<N>@d<D>).
//! What is benched: MLXBENCH_MODELS, MLXBENCH_KV_BITS, MLXBENCH_PROMPT_TOKENS, MLXBENCH_GEN_TOKENS
//! or mlxbench.toml (see README); by default synthetic tiny Llama models.
mod common;

fn main() {
    common::run(mlxbench::measure::Phase::Decode);
}
