//! The synthetic model's tokenizer: byte-level BPE (as Llama 3 and Qwen use) trained with the
//! `tokenizers` crate on a short embedded English text. Training is deterministic (the trainer
//! breaks ties between equally frequent pairs by id), so every run writes the same bytes.
use serde_json::{json, Value};
use tokenizers::{
    decoders::byte_level::ByteLevel as ByteLevelDecoder,
    models::{bpe::BpeTrainerBuilder, bpe::BPE, TrainerWrapper},
    pre_tokenizers::byte_level::ByteLevel,
    AddedToken, Tokenizer,
};

use crate::prompt::BASE_TEXT;

/// The only special token; it ends a sequence.
pub const EOS_TOKEN: &str = "<|endoftext|>";

/// Upper bound on the vocabulary: 256 bytes, the EOS token and the merges the text affords.
pub const VOCAB_SIZE: usize = 512;

/// Training text besides the benchmark's own prompt text (written for this project).
const EXTRA_TEXT: &str = "\
A river starts as snowmelt high in the mountains, gathers streams from every side valley, and \
slows as it reaches the plain, where it winds between fields of barley and orchards of apples. \
Towns grew where the river could be crossed, and their markets still open on the old squares.

The kitchen smelled of onions, garlic and fresh bread. Someone was stirring a pot of soup while \
another person set the table with plates, glasses and a bowl of oranges. Outside, the rain had \
stopped and the street lights came on one by one.

Engineers measure a program before they change it. They write down the question, run the same \
test several times, and look at the spread of the numbers as well as the average. A result that \
cannot be repeated is not yet a result, and a faster program that gives wrong answers is not faster.

Birds migrate along the coast each autumn. Some fly by day and rest at night; others travel in \
darkness and feed in the marshes at dawn. Volunteers count them from the dunes, writing the numbers \
in notebooks that go back more than fifty years.

She opened the letter, read it twice, and smiled. The new job would start in the spring, in a city \
she had visited only once, with a harbour, a university and a museum of old clocks and maps.
";

/// A trained tokenizer, serialized.
pub struct Trained {
    /// `tokenizer.json`.
    pub json: String,
    pub eos_id: u32,
    /// Ids in use (special token included); a model's vocabulary must be at least this large.
    pub vocab_size: usize,
}

/// Trains the tokenizer; the error is the `tokenizers` crate's message.
pub fn train() -> Result<Trained, String> {
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(VOCAB_SIZE)
        .special_tokens(vec![AddedToken::from(EOS_TOKEN, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build()
        .into();
    let lines = BASE_TEXT.split_inclusive('\n').chain(EXTRA_TEXT.split_inclusive('\n'));
    tokenizer.train(&mut trainer, lines).map_err(|e| e.to_string())?;
    let eos_id = tokenizer.token_to_id(EOS_TOKEN).ok_or_else(|| format!("{EOS_TOKEN} is not in the vocabulary"))?;
    let vocab_size = tokenizer.get_vocab_size(true);
    let json = tokenizer.to_string(true).map_err(|e| e.to_string())?;
    Ok(Trained { json, eos_id, vocab_size })
}

/// `tokenizer_config.json` as transformers (hence mlx-lm) reads it.
pub fn tokenizer_config(model_max_length: Option<u64>) -> Value {
    json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": EOS_TOKEN,
        "add_bos_token": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": model_max_length.unwrap_or(4096),
    })
}
