//! Generation: chunked prefill, then a decode iterator that stays one step ahead of the host
//! (step n+1 is built and queued with MLX's async evaluation before step n's token is read), as
//! mlx-lm's `generate_step` does. It knows nothing of time: [`Generation::prefill`] returns when
//! the prompt is in the cache (evaluated) and [`Generation::next_token`] when a token is on the
//! host; the measuring layer times those boundaries from outside. A decode step has parts the
//! measuring layer may also time apart: [`Generation::build_next`] (the host builds the next step's
//! graph), [`Generation::submit_next`] (hands it to MLX: `async_eval`) and
//! [`Generation::read_token`] (the host waits for the token); [`Generation::queue_next`] is the
//! first two.
use std::cell::{Cell, RefCell};

use mlx_rs::{
    error::Exception,
    ops::{
        argsort_axis, cumsum, exp, indexing::{argmax_axis, put_along_axis}, logsumexp_axis, select,
    },
    random,
    transforms::{async_eval, compile::compile, eval},
    Array, Dtype,
};

use crate::{
    cache::{KvCache, KvCacheOptions},
    error::{Error, Result},
    models::LanguageModel,
    prompt::Tokens,
};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Sampling {
    /// The most likely token (temperature 0).
    Greedy,
    /// Sampled at `temperature` from the smallest set of tokens whose probability reaches
    /// `top_p` (1.0: all tokens), reproducibly from `seed`.
    Random { temperature: f32, top_p: f32, seed: u64 },
}

/// Everything a generation is asked to do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenerateOptions {
    /// Tokens to generate per sequence (fewer when every sequence reaches a stop token first).
    pub n_generate: usize,
    pub sampling: Sampling,
    pub kv: KvCacheOptions,
    /// Prompt tokens per prefill forward pass (mlx-lm's default 2048).
    pub prefill_step_size: usize,
    /// Stop once every sequence has produced one of these; empty: always generate `n_generate`.
    pub stop_tokens: Vec<u32>,
    /// Run the decode step's sampler (log-softmax and greedy choice) as one function compiled
    /// with MLX's `compile`, traced once per shape and replayed ([`compiled_sampler_traces`]).
    /// Random sampling is not compiled (it runs as without this). The forward pass is never
    /// compiled: see the module header.
    pub compile: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            n_generate: 100,
            sampling: Sampling::Greedy,
            kv: KvCacheOptions::default(),
            prefill_step_size: 2048,
            stop_tokens: Vec::new(),
            compile: false,
        }
    }
}

/// One decoded step: a token per sequence, and the log-probabilities it was drawn from.
pub struct Step {
    pub tokens: Vec<u32>,
    /// `[B, vocab]`.
    pub logprobs: Array,
}

/// A generation in progress over a batch of equal-length prompts. A clone is a snapshot that goes
/// on independently (the caches' arrays are shared, never written in place).
#[derive(Clone)]
pub struct Generation<'m> {
    model: &'m dyn LanguageModel,
    caches: Vec<KvCache>,
    options: GenerateOptions,
    /// Prompt tokens not yet run through the model (all of them before prefill).
    pending: Option<Array>,
    /// The step whose token is read next, already queued for evaluation.
    ahead: Option<(Array, Array)>,
    /// The step [`Generation::build_next`] took from `ahead`, whose token [`Generation::read_token`]
    /// reads.
    current: Option<(Array, Array)>,
    /// The step after `current`, built by [`Generation::build_next`] and not yet handed to MLX.
    built: Option<(Array, Array)>,
    produced: usize,
    finished: Vec<bool>,
}

/// The greedy sampler as one graph: log-probabilities `[B, vocab]` from the last position's
/// logits and their argmax `[B]`, the same operations as [`log_softmax`] and
/// [`Sampling::sample`]'s greedy arm. Its body runs only while MLX traces it, so it counts traces.
fn greedy_sampler_graph(inputs: &[Array]) -> std::result::Result<Vec<Array>, Exception> {
    SAMPLER_TRACES.with(|traces| traces.set(traces.get() + 1));
    let last = &inputs[0];
    let logprobs = last.subtract(logsumexp_axis(last, -1, true)?)?;
    let sampled = argmax_axis(&logprobs, -1, None)?;
    Ok(vec![sampled, logprobs])
}

type CompiledSampler = Box<dyn for<'a> FnMut(&'a [Array]) -> std::result::Result<Vec<Array>, Exception>>;

thread_local! {
    static SAMPLER_TRACES: Cell<usize> = const { Cell::new(0) };
    /// Compiled once per thread, so MLX's compile cache keeps its traces across generations.
    static GREEDY_SAMPLER: RefCell<CompiledSampler> = RefCell::new(Box::new(compile(greedy_sampler_graph, false)));
}

/// How many times MLX has traced the compiled sampler on this thread (once per new input shape:
/// MLX traces on the calling thread, and each thread has its own compiled function).
pub fn compiled_sampler_traces() -> usize {
    SAMPLER_TRACES.with(Cell::get)
}

/// Log-probabilities from logits, over the last axis.
pub(crate) fn log_softmax(logits: &Array) -> Result<Array> {
    Ok(logits.subtract(logsumexp_axis(logits, -1, true)?)?)
}

/// Keeps the most likely tokens whose probabilities add up to `top_p`; the rest get -inf.
fn top_p_filter(logprobs: &Array, top_p: f32) -> Result<Array> {
    let order = argsort_axis(logprobs, -1)?;
    let sorted = logprobs.take_along_axis(&order, -1)?;
    let cumulative = cumsum(exp(&sorted)?, -1, None, None)?;
    let keep = cumulative.gt(Array::from_f32(1.0 - top_p))?;
    let neg_inf = Array::from_f32(f32::NEG_INFINITY).as_dtype(logprobs.dtype())?;
    let filtered_sorted = select(&keep, &sorted, &neg_inf)?;
    Ok(put_along_axis(logprobs, &order, &filtered_sorted, -1)?)
}

impl Sampling {
    pub fn validate(&self) -> Result<()> {
        if let Sampling::Random { temperature, top_p, .. } = *self {
            if !(temperature > 0.0 && temperature.is_finite()) {
                return Err(Error::InvalidOption(format!("temperature {temperature} must be > 0 (0 means greedy)")));
            }
            if !(top_p > 0.0 && top_p <= 1.0) {
                return Err(Error::InvalidOption(format!("top_p {top_p} must be in (0, 1]")));
            }
        }
        Ok(())
    }

    /// Token ids `[B]` from log-probabilities `[B, vocab]` at decode step `step`.
    pub(crate) fn sample(&self, logprobs: &Array, step: usize) -> Result<Array> {
        match *self {
            Sampling::Greedy => Ok(argmax_axis(logprobs, -1, None)?),
            Sampling::Random { temperature, top_p, seed } => {
                let logprobs = if top_p < 1.0 { top_p_filter(logprobs, top_p)? } else { logprobs.clone() };
                let scaled = logprobs.multiply(Array::from_f32(1.0 / temperature).as_dtype(logprobs.dtype())?)?;
                let key = random::key(seed.wrapping_add(step as u64))?;
                Ok(random::categorical(&scaled, -1, None, &key)?)
            }
        }
    }
}

impl<'m> Generation<'m> {
    /// Prepares a generation of `prompt` (`[B, L]`, L ≥ 1); nothing runs yet.
    pub fn new(model: &'m dyn LanguageModel, prompt: &Tokens, options: GenerateOptions) -> Result<Self> {
        options.sampling.validate()?;
        if options.prefill_step_size == 0 {
            return Err(Error::InvalidOption("prefill_step_size must be at least 1".into()));
        }
        let ids = prompt.to_array()?;
        let caches = model.make_caches(&options.kv)?;
        let batch = prompt.batch();
        Ok(Self { model, caches, options, pending: Some(ids), ahead: None, current: None, built: None, produced: 0, finished: vec![false; batch] })
    }

    pub fn caches(&self) -> &[KvCache] {
        &self.caches
    }

    /// Bytes held by all layers' caches.
    pub fn cache_nbytes(&self) -> usize {
        self.caches.iter().map(KvCache::nbytes).sum()
    }

    /// Tokens in the cache so far.
    pub fn cache_offset(&self) -> i32 {
        self.caches.first().map_or(0, KvCache::offset)
    }

    fn forward(&mut self, tokens: &Array) -> Result<Array> {
        let logits = self.model.forward(tokens, Some(&mut self.caches))?;
        for cache in &mut self.caches {
            cache.maybe_quantize(&self.options.kv)?;
        }
        Ok(logits)
    }

    /// Copies the prompt tokens not yet run to the device and waits for it, so that what is timed
    /// next starts with the prompt in place.
    pub fn upload_prompt(&mut self) -> Result<()> {
        if let Some(pending) = &self.pending {
            pending.eval()?;
        }
        Ok(())
    }

    /// Prompt tokens not yet run through the model.
    pub fn pending_tokens(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| p.dim(1) as usize)
    }

    /// Runs the first `count` pending prompt tokens through the model in chunks of
    /// `prefill_step_size`, evaluating the caches after each chunk. At least one prompt token
    /// always stays pending for the first decode step.
    fn run_prompt_tokens(&mut self, count: usize) -> Result<()> {
        let Some(mut rest) = self.pending.take() else { return Ok(()) };
        let step = self.options.prefill_step_size as i32;
        let mut remaining = count.min(rest.dim(1).saturating_sub(1) as usize) as i32;
        while remaining > 0 {
            let n = step.min(remaining);
            let chunk = rest.try_index_cols(0, n)?;
            self.forward(&chunk)?;
            eval(self.caches.iter().flat_map(KvCache::arrays))?;
            rest = rest.try_index_cols(n, rest.dim(1))?;
            remaining -= n;
        }
        self.pending = Some(rest);
        Ok(())
    }

    /// Fills the cache with the first `depth` prompt tokens (context that is already there before
    /// the part being measured, like llama-bench's `-d`). Must come before [`Self::prefill`].
    pub fn prefill_context(&mut self, depth: usize) -> Result<()> {
        check_context(depth, self.pending_tokens())?;
        self.run_prompt_tokens(depth)
    }

    /// Runs all prompt tokens but the last through the model in chunks of `prefill_step_size`,
    /// evaluating the caches after each chunk. The last token is run by the first decode step, as
    /// in mlx-lm. Idempotent.
    pub fn prefill(&mut self) -> Result<()> {
        self.run_prompt_tokens(usize::MAX)
    }

    /// Builds (lazily) the step that feeds `tokens` (`[B, L]`) and samples from the last position.
    fn build_step(&mut self, tokens: &Array) -> Result<(Array, Array)> {
        let logits = self.forward(tokens)?;
        let last = logits.try_index_cols(logits.dim(1) - 1, logits.dim(1))?.squeeze_axes(&[1])?;
        if self.options.compile && self.options.sampling == Sampling::Greedy {
            let mut outputs = GREEDY_SAMPLER.with_borrow_mut(|f| f(&[last]))?.into_iter();
            let (Some(sampled), Some(logprobs)) = (outputs.next(), outputs.next()) else {
                return Err(Error::InvalidOption("the compiled sampler returned fewer than 2 arrays".into()));
            };
            return Ok((sampled, logprobs));
        }
        let logprobs = log_softmax(&last)?;
        let sampled = self.options.sampling.sample(&logprobs, self.produced)?;
        Ok((sampled, logprobs))
    }

    /// One teacher-forced step (`quality`): runs the pending prompt tokens (after
    /// [`Self::prefill`], the last one) through the model as a decode step does, evaluates, and
    /// returns the log-probabilities `[B, vocab]` after the last of them. `then` (`[B, 1]`, the
    /// text's own next tokens) becomes the next step's input instead of a sampled token. Only
    /// before decoding starts.
    pub fn force_step(&mut self, then: &Array) -> Result<Array> {
        if self.ahead.is_some() {
            return Err(Error::InvalidOption("a teacher-forced step after decoding started".into()));
        }
        self.prefill()?;
        let input = self.pending.take().ok_or_else(|| Error::InvalidOption("the generation has started".into()))?;
        let logits = self.forward(&input)?;
        let last = logits.try_index_cols(logits.dim(1) - 1, logits.dim(1))?.squeeze_axes(&[1])?;
        let logprobs = log_softmax(&last)?;
        eval(std::iter::once(&logprobs).chain(self.caches.iter().flat_map(KvCache::arrays)))?;
        self.pending = Some(then.clone());
        Ok(logprobs)
    }

    /// This generation with its caches turned into `kv`'s kind, as [`KvCache::maybe_quantize`]
    /// does after a forward pass: a plain cache filled by one prefill chunk becomes exactly what a
    /// quantized generation holds after that chunk. Only before decoding starts.
    pub fn with_kv(&self, kv: KvCacheOptions) -> Result<Self> {
        if self.ahead.is_some() || self.produced > 0 {
            return Err(Error::InvalidOption("a cache setting changed after decoding started".into()));
        }
        let mut fork = self.clone();
        fork.options.kv = kv;
        for cache in &mut fork.caches {
            cache.maybe_quantize(&kv)?;
        }
        eval(fork.caches.iter().flat_map(KvCache::arrays))?;
        Ok(fork)
    }

    /// The first decode step's outputs (token ids `[B]`, log-probabilities `[B, vocab]`) after the
    /// prefill, built but not evaluated: a look at the graph one step runs (see `graph`). The
    /// generation cannot go on afterwards.
    pub fn first_step_graph(&mut self) -> Result<(Array, Array)> {
        self.prefill()?;
        let last = self.pending.take().ok_or_else(|| Error::InvalidOption("the generation has started".into()))?;
        self.build_step(&last)
    }

    /// The next token of every sequence, materialized on the host; `None` once `n_generate` are
    /// produced or every sequence has stopped. The same as [`Self::queue_next`] then
    /// [`Self::read_token`].
    pub fn next_token(&mut self) -> Result<Option<Step>> {
        if !self.queue_next()? {
            return Ok(None);
        }
        self.read_token().map(Some)
    }

    /// The first part of a decode step, [`Self::build_next`] then [`Self::submit_next`]: the
    /// device works on this step and the next while the host waits in [`Self::read_token`].
    /// Returns `false`, doing nothing, once `n_generate` tokens are produced or every sequence
    /// has stopped.
    pub fn queue_next(&mut self) -> Result<bool> {
        if !self.build_next()? {
            return Ok(false);
        }
        self.submit_next()?;
        Ok(true)
    }

    /// Takes the step whose token comes next (building and queueing it first if it is the first
    /// one) and builds, lazily, the step after it. Returns `false`, doing nothing, once
    /// `n_generate` tokens are produced or every sequence has stopped.
    pub fn build_next(&mut self) -> Result<bool> {
        if self.current.is_some() || self.built.is_some() {
            return Err(Error::InvalidOption("a decode step was begun twice without read_token".into()));
        }
        if self.produced >= self.options.n_generate || self.finished.iter().all(|f| *f) {
            return Ok(false);
        }
        if self.ahead.is_none() {
            self.prefill()?;
            let last = self.pending.take().ok_or_else(|| Error::InvalidOption("the generation has started".into()))?;
            let first = self.build_step(&last)?;
            async_eval([&first.0, &first.1])?;
            self.ahead = Some(first);
        }
        let current = self.ahead.take().ok_or_else(|| Error::InvalidOption("no step queued".into()))?;
        self.produced += 1;
        if self.produced < self.options.n_generate {
            let next_input = current.0.reshape(&[-1, 1])?;
            self.built = Some(self.build_step(&next_input)?);
        }
        self.current = Some(current);
        Ok(true)
    }

    /// Hands the step [`Self::build_next`] built to MLX (`async_eval`); nothing after the last.
    pub fn submit_next(&mut self) -> Result<()> {
        if let Some(next) = self.built.take() {
            async_eval([&next.0, &next.1])?;
            self.ahead = Some(next);
        }
        Ok(())
    }

    /// The last part of a decode step: waits for the token [`Self::build_next`] took and brings
    /// it to the host.
    pub fn read_token(&mut self) -> Result<Step> {
        self.submit_next()?;
        let (sampled, logprobs) =
            self.current.take().ok_or_else(|| Error::InvalidOption("read_token called before build_next".into()))?;
        let tokens: Vec<u32> = sampled.as_dtype(Dtype::Uint32)?.as_slice::<u32>().to_vec();
        if !self.options.stop_tokens.is_empty() {
            for (done, t) in self.finished.iter_mut().zip(&tokens) {
                *done |= self.options.stop_tokens.contains(t);
            }
        }
        Ok(Step { tokens, logprobs })
    }
}

/// A context of `depth` tokens must leave at least one of the `pending` prompt tokens to measure.
pub(crate) fn check_context(depth: usize, pending: usize) -> Result<()> {
    if depth >= pending {
        return Err(Error::InvalidOption(format!(
            "a context of {depth} tokens leaves no prompt (the prompt has {pending} tokens)"
        )));
    }
    Ok(())
}

/// Column slicing of `[B, L, ...]` arrays along axis 1.
trait ColumnSlice {
    fn try_index_cols(&self, start: i32, stop: i32) -> Result<Array>;
}

impl ColumnSlice for Array {
    fn try_index_cols(&self, start: i32, stop: i32) -> Result<Array> {
        use mlx_rs::ops::indexing::TryIndexOp;
        Ok(self.try_index((.., start..stop))?)
    }
}
