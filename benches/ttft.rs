//! Run with: cargo bench --bench ttft
//! Time to first token: prompt on the device to first token on the host (ids ttft/<model>/kv<bits>/p<N>).
//! What is benched: MLXBENCH_MODELS, MLXBENCH_KV_BITS, MLXBENCH_PROMPT_TOKENS, MLXBENCH_GEN_TOKENS
//! or mlxbench.toml (see README); by default synthetic tiny Llama models.
mod common;

fn main() {
    common::run(mlxbench::measure::Phase::Ttft);
}
