//! How the Criterion benches name what they bench: `<phase>/<model>/kv<bits|none>/p<N>` for
//! prefill and TTFT, `decode/<model>/kv<...>/g<N>@d<D>` for decode.
use super::plan::{kv_label, RunPoint};
use crate::measure::Phase;

/// The part of a benchmark id after the group (`<model>/kv<bits>/p<N>` or `.../g<N>@d<D>`).
pub fn function_id(phase: Phase, point: &RunPoint) -> String {
    let (model, kv) = (model_label(&point.model), kv_label(point.kv_bits));
    match phase {
        Phase::Prefill | Phase::Ttft => format!("{model}/{kv}/p{}", point.n_prompt),
        Phase::Decode => format!("{model}/{kv}/g{}@d{}", point.n_generate, point.n_prompt),
    }
}

/// The full id Criterion shows and filters on: `<phase>/<function id>`.
pub fn benchmark_id(phase: Phase, point: &RunPoint) -> String {
    format!("{}/{}", phase.name(), function_id(phase, point))
}

/// A short name for a model spec: a directory's last component, a repo id's name.
pub fn model_label(spec: &str) -> String {
    let trimmed = spec.trim_end_matches(['/', '\\']);
    trimmed.rsplit(['/', '\\']).next().unwrap_or(trimmed).to_string()
}

/// The tokens one iteration of `phase` at `point` processes (Criterion's `Throughput::Elements`).
pub fn phase_tokens(phase: Phase, point: &RunPoint) -> usize {
    match phase {
        Phase::Prefill | Phase::Ttft => point.n_prompt,
        Phase::Decode => point.n_generate,
    }
}

/// A configuration of a `run` in one name (the gate's and the exports' benchmark names):
/// `<model>/<engine>/kv<bits>/p<N>/g<N>/b<B>/d<D>`.
pub fn config_id(p: &RunPoint) -> String {
    format!(
        "{}/{}/{}/p{}/g{}/b{}/d{}",
        model_label(&p.model),
        p.engine,
        kv_label(p.kv_bits),
        p.n_prompt,
        p.n_generate,
        p.batch,
        p.depth
    )
}
