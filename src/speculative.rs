//! Speculative decoding, as mlx-lm 0.32's `speculative_generate_step`: a draft model proposes up
//! to `k` tokens with its own cache, the target verifies them and one more in a single forward pass
//! of `k + 1` tokens, the longest prefix of the draft that the target would have picked itself is
//! kept together with the target's own next token (the bonus), and both caches are trimmed back to
//! what was kept. Greedy and sampled (the target's sample must equal the draft's, as in mlx-lm; it
//! is not rejection sampling). One sequence (batch 1), as mlx-lm.
//!
//! Like [`crate::generate`] it knows nothing of time: [`SpeculativeGeneration::draft`] returns when
//! the draft's proposals are evaluated and [`SpeculativeGeneration::verify`] when the target's
//! verdict is on the host, so the measuring layer can time the draft's and the target's parts of a
//! step from outside. (mlx-lm builds the verify pass while the draft still runs; waiting for the
//! draft in between costs that overlap of host work with device work, and nothing else.)
use std::collections::VecDeque;

use mlx_rs::{
    ops::concatenate,
    transforms::{async_eval, eval},
    Array, Dtype,
};

use crate::{
    cache::{self, KvCache},
    error::{Error, Result},
    generate::{log_softmax, GenerateOptions},
    models::LanguageModel,
    prompt::Tokens,
    tokenizer::Tokenizer,
};

/// One token handed out, and whether the draft proposed it (mlx-lm's `from_draft`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeculativeToken {
    pub token: u32,
    pub from_draft: bool,
}

/// What one verify step did: the draft proposed `drafted` tokens, the target kept the first
/// `accepted` of them, and `emitted` tokens were handed out (the accepted ones and the bonus,
/// fewer when `n_generate` or a stop token ended the generation inside the step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyOutcome {
    pub drafted: usize,
    pub accepted: usize,
    pub emitted: usize,
}

/// A speculative generation in progress over one prompt.
pub struct SpeculativeGeneration<'m> {
    target: &'m dyn LanguageModel,
    draft: &'m dyn LanguageModel,
    target_caches: Vec<KvCache>,
    draft_caches: Vec<KvCache>,
    options: GenerateOptions,
    num_draft_tokens: usize,
    /// Prompt tokens not yet run (`[1, L]`), before the prefill.
    pending: Option<Array>,
    /// The target's next input (1-D), and the draft's (one or two tokens).
    target_y: Option<Array>,
    draft_y: Option<Array>,
    /// The draft's proposals of the step under way, evaluated.
    drafted: Option<Array>,
    produced: usize,
    /// Sampler calls so far: the step index of [`crate::generate::Sampling`]'s seeded keys.
    samples: usize,
    /// Tokens of the last verify step not handed out yet by [`Self::next_token`].
    queue: VecDeque<SpeculativeToken>,
    finished: bool,
}

/// The refusal of a cache that cannot be trimmed, naming its kinds (mlx-lm's error).
fn untrimmable(caches: &[KvCache]) -> Error {
    let mut kinds: Vec<&str> = caches.iter().filter(|c| !c.is_trimmable()).map(cache::kind_name).collect();
    kinds.dedup();
    Error::InvalidOption(format!(
        "speculative decoding requires a trimmable prompt cache (got {}); a rotating cache (max_kv_size) \
         cannot be trimmed once it has wrapped",
        kinds.join(", ")
    ))
}

/// Runs all but the last of `ids` (`[1, L]`) through `model` in chunks of `step`, evaluating the
/// caches after each chunk (mlx-lm's `_prefill`); returns the rest (`[1, rest]`). `count` caps the
/// tokens run (the untimed context).
fn prefill_into(
    model: &dyn LanguageModel,
    caches: &mut [KvCache],
    options: &GenerateOptions,
    mut rest: Array,
    count: usize,
) -> Result<Array> {
    use mlx_rs::ops::indexing::TryIndexOp;
    let step = options.prefill_step_size as i32;
    let mut remaining = count.min(rest.dim(1).saturating_sub(1) as usize) as i32;
    while remaining > 0 {
        let n = step.min(remaining);
        let chunk = rest.try_index((.., 0..n))?;
        model.forward(&chunk, Some(caches))?;
        for cache in caches.iter_mut() {
            cache.maybe_quantize(&options.kv)?;
        }
        eval(caches.iter().flat_map(KvCache::arrays))?;
        rest = rest.try_index((.., n..rest.dim(1)))?;
        remaining -= n;
    }
    Ok(rest)
}

impl<'m> SpeculativeGeneration<'m> {
    /// Prepares a generation of `prompt` (one sequence, L ≥ 1) by `target` with `draft` proposing
    /// `num_draft_tokens` (≥ 1) a step; nothing runs yet. Refuses a batch, and a target whose caches
    /// cannot be trimmed, as mlx-lm does.
    pub fn new(
        target: &'m dyn LanguageModel,
        draft: &'m dyn LanguageModel,
        prompt: &Tokens,
        options: GenerateOptions,
        num_draft_tokens: usize,
    ) -> Result<Self> {
        options.sampling.validate()?;
        if options.prefill_step_size == 0 {
            return Err(Error::InvalidOption("prefill_step_size must be at least 1".into()));
        }
        if num_draft_tokens == 0 {
            return Err(Error::InvalidOption("--num-draft-tokens must be at least 1".into()));
        }
        if prompt.batch() != 1 {
            return Err(Error::InvalidOption(format!(
                "speculative decoding runs one sequence (batch 1), as mlx-lm's speculative_generate_step; got batch {}",
                prompt.batch()
            )));
        }
        let target_caches = target.make_caches(&options.kv)?;
        let draft_caches = draft.make_caches(&options.kv)?;
        if !cache::can_trim(&target_caches) {
            return Err(untrimmable(&target_caches));
        }
        Ok(Self {
            target,
            draft,
            target_caches,
            draft_caches,
            options,
            num_draft_tokens,
            pending: Some(prompt.to_array()?),
            target_y: None,
            draft_y: None,
            drafted: None,
            produced: 0,
            samples: 0,
            queue: VecDeque::new(),
            finished: false,
        })
    }

    /// Bytes held by the target's and the draft's caches.
    pub fn cache_nbytes(&self) -> usize {
        self.target_caches.iter().chain(&self.draft_caches).map(KvCache::nbytes).sum()
    }

    /// Tokens in the target's cache so far.
    pub fn cache_offset(&self) -> i32 {
        self.target_caches.first().map_or(0, KvCache::offset)
    }

    /// Tokens in the draft's cache so far.
    pub fn draft_cache_offset(&self) -> i32 {
        self.draft_caches.first().map_or(0, KvCache::offset)
    }

    /// Prompt tokens not yet run through the models.
    pub fn pending_tokens(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| p.dim(1) as usize)
    }

    /// Copies the pending prompt to the device and waits for it.
    pub fn upload_prompt(&mut self) -> Result<()> {
        if let Some(pending) = &self.pending {
            pending.eval()?;
        }
        Ok(())
    }

    /// Runs the first `count` pending prompt tokens into both caches (draft first, as mlx-lm).
    fn run_prompt_tokens(&mut self, count: usize) -> Result<()> {
        let Some(rest) = self.pending.take() else { return Ok(()) };
        prefill_into(self.draft, &mut self.draft_caches, &self.options, rest.clone(), count)?;
        let rest = prefill_into(self.target, &mut self.target_caches, &self.options, rest, count)?;
        self.pending = Some(rest);
        Ok(())
    }

    /// Fills both caches with the first `depth` prompt tokens (untimed context). Before
    /// [`Self::prefill`].
    pub fn prefill_context(&mut self, depth: usize) -> Result<()> {
        crate::generate::check_context(depth, self.pending_tokens())?;
        self.run_prompt_tokens(depth)
    }

    /// Runs all prompt tokens but the last through the draft, then the target. Idempotent.
    pub fn prefill(&mut self) -> Result<()> {
        self.run_prompt_tokens(usize::MAX)
    }

    /// The target's next input, after the prefill on first use.
    fn start(&mut self) -> Result<()> {
        if self.target_y.is_none() {
            self.prefill()?;
            let last = self.pending.take().ok_or_else(|| Error::InvalidOption("the generation has started".into()))?;
            let last = last.reshape(&[-1])?.as_dtype(Dtype::Uint32)?;
            self.draft_y = Some(last.clone());
            self.target_y = Some(last);
        }
        Ok(())
    }

    /// mlx-lm's `_step`: feeds `y` (1-D) and samples from its last `n_predict` positions; returns
    /// the tokens `[n_predict]` (the log-probabilities are not kept).
    fn step(&mut self, of_target: bool, y: &Array, n_predict: i32) -> Result<Array> {
        use mlx_rs::ops::indexing::TryIndexOp;
        let (model, caches) = if of_target {
            (self.target, &mut self.target_caches)
        } else {
            (self.draft, &mut self.draft_caches)
        };
        let logits = model.forward(&y.reshape(&[1, -1])?, Some(caches))?;
        let len = logits.dim(1);
        let logits = logits.try_index((.., len - n_predict..len))?;
        for cache in caches.iter_mut() {
            cache.maybe_quantize(&self.options.kv)?;
        }
        let logprobs = log_softmax(&logits.squeeze_axes(&[0])?)?;
        let sampled = self.options.sampling.sample(&logprobs, self.samples)?;
        self.samples += 1;
        Ok(sampled.as_dtype(Dtype::Uint32)?)
    }

    /// Whether the generation is over (`n_generate` tokens handed out or a stop token reached).
    pub fn done(&self) -> bool {
        self.finished || self.produced >= self.options.n_generate
    }

    /// The draft's part of a step: up to `num_draft_tokens` proposals (fewer near `n_generate`),
    /// evaluated. Returns how many were drafted.
    pub fn draft(&mut self) -> Result<usize> {
        self.start()?;
        let num_draft = self.num_draft_tokens.min(self.options.n_generate - self.produced);
        let mut ys = Vec::with_capacity(num_draft);
        let mut y = self.draft_y.clone().expect("set by start");
        for _ in 0..num_draft {
            y = self.step(false, &y, 1)?;
            async_eval([&y])?;
            ys.push(y.clone());
        }
        let drafted = if ys.is_empty() { Array::from_slice::<u32>(&[], &[0]) } else { concatenate(&ys, 0)? };
        drafted.eval()?;
        self.drafted = Some(drafted);
        Ok(num_draft)
    }

    /// The target's part: verifies the proposals of [`Self::draft`] and one more token in a single
    /// pass, keeps the accepted prefix and the bonus, trims both caches back. Returns the step's
    /// outcome; its tokens are then handed out by [`Self::next_token`].
    pub fn verify(&mut self) -> Result<VerifyOutcome> {
        let drafted_arr = self.drafted.take().ok_or_else(|| Error::InvalidOption("verify needs a draft first".into()))?;
        let num_draft = drafted_arr.dim(0) as usize;
        let y = concatenate(&[self.target_y.clone().expect("set by start"), drafted_arr.clone()], 0)?;
        let tokens = self.step(true, &y, num_draft as i32 + 1)?;
        eval([&tokens])?;
        let tokens: Vec<u32> = tokens.as_slice::<u32>().to_vec();
        let drafted: Vec<u32> = drafted_arr.as_slice::<u32>().to_vec();
        let room = self.options.n_generate - self.produced;
        let mut accepted = 0;
        while accepted < num_draft && tokens[accepted] == drafted[accepted] && accepted < room {
            accepted += 1;
        }
        let mut out: Vec<SpeculativeToken> =
            tokens[..accepted].iter().map(|&token| SpeculativeToken { token, from_draft: true }).collect();
        if accepted < room {
            out.push(SpeculativeToken { token: tokens[accepted], from_draft: false });
        }
        if !self.options.stop_tokens.is_empty() {
            if let Some(stop) = out.iter().position(|t| self.options.stop_tokens.contains(&t.token)) {
                out.truncate(stop + 1);
                self.finished = true;
            }
        }
        self.produced += out.len();
        let emitted = out.len();
        self.queue.extend(out);
        if !self.done() {
            let bonus = Array::from_slice(&[tokens[accepted]], &[1]);
            self.draft_y = Some(if accepted == num_draft {
                Array::from_slice(&[drafted[num_draft - 1], tokens[accepted]], &[2])
            } else {
                bonus.clone()
            });
            self.target_y = Some(bonus);
            self.rewind(num_draft, accepted)?;
        }
        Ok(VerifyOutcome { drafted: num_draft, accepted, emitted })
    }

    /// mlx-lm's `_rewind_cache`: the target drops the rejected proposals, the draft those and the
    /// last one it fed (which the bonus replaces), except when all were accepted. A cache that can
    /// no longer be trimmed (a wrapped rotating cache) is refused by name here, where mlx-lm would
    /// silently go on with a wrong cache.
    fn rewind(&mut self, num_draft: usize, accepted: usize) -> Result<()> {
        let target_trim = (num_draft - accepted) as i32;
        let draft_trim = (num_draft - accepted).saturating_sub(1) as i32;
        for (caches, n) in [(&mut self.target_caches, target_trim), (&mut self.draft_caches, draft_trim)] {
            if n > 0 {
                if !cache::can_trim(caches) {
                    return Err(untrimmable(caches));
                }
                cache::trim_caches(caches, n);
            }
        }
        Ok(())
    }

    /// The next token, running a draft and a verify step when the last step's are handed out;
    /// `None` at the end.
    pub fn next_token(&mut self) -> Result<Option<SpeculativeToken>> {
        if self.queue.is_empty() && !self.done() {
            self.draft()?;
            self.verify()?;
        }
        Ok(self.queue.pop_front())
    }

    /// Takes the tokens of the last verify step that [`Self::next_token`] has not handed out.
    pub fn take_step_tokens(&mut self) -> Vec<SpeculativeToken> {
        self.queue.drain(..).collect()
    }
}

/// The model family of a `model_type`, for the draft check: the architectures that share
/// tokenizers and are trained to predict each other's text (Llama; Mistral and Mixtral; Qwen 2,
/// 3 and Qwen3-MoE; Gemma 2 and 3; Phi-3). `None` for a type we do not know.
pub fn model_family(model_type: &str) -> Option<&'static str> {
    Some(match model_type {
        "llama" => "Llama",
        "mistral" | "mixtral" => "Mistral",
        "qwen2" | "qwen3" | "qwen3_moe" => "Qwen",
        "gemma2" | "gemma3_text" | "gemma3" => "Gemma",
        "phi3" => "Phi",
        _ => return None,
    })
}

/// A draft of another model family than its target's (a Qwen draft for a Llama target) is
/// refused before anything runs, naming both models and both types: its proposals would be
/// another model's guesses, so what it measures is not speculative decoding as anyone runs it.
/// mlx-lm checks only the tokenizers ([`check_draft`]); a type we do not know passes here.
pub fn check_draft_family(target_name: &str, target_type: &str, draft_name: &str, draft_type: &str) -> Result<()> {
    match (model_family(target_type), model_family(draft_type)) {
        (Some(t), Some(d)) if t != d => Err(Error::InvalidOption(format!(
            "draft model {draft_name} ({draft_type}, {d} family) is of another family than target model \
             {target_name} ({target_type}, {t} family): a draft must be a smaller model of the target's family"
        ))),
        _ => Ok(()),
    }
}

/// mlx-lm's rule for a draft model (`mlx_lm.generate`: "Draft model tokenizer does not match
/// model tokenizer"): the two tokenizers must have the same vocabulary size. We also require the
/// same token → id map (a different tokenizer of equal size would make the draft propose other
/// words under the same ids). Errors name both models. A draft of another architecture is
/// allowed, as in mlx-lm, when its tokenizer is the target's.
pub fn check_draft(target_name: &str, target: &Tokenizer, draft_name: &str, draft: &Tokenizer) -> Result<()> {
    let (t, d) = (target.vocab_size(), draft.vocab_size());
    if t != d {
        return Err(Error::InvalidOption(format!(
            "draft model {draft_name} does not match target model {target_name}: its tokenizer has a vocabulary \
             of {d} tokens, the target's {t} (mlx-lm refuses this too)"
        )));
    }
    if !target.same_vocabulary(draft) {
        return Err(Error::InvalidOption(format!(
            "draft model {draft_name} does not match target model {target_name}: their tokenizers have the same \
             size ({t}) but map tokens to different ids"
        )));
    }
    Ok(())
}
