//! The prompt builder gives exactly N tokens, from text or at random, for one or several rows.
use mlxbench::{
    prompt::{build_prompts, PromptKind},
    tokenizer::Tokenizer,
};
use tokenizers::{
    models::bpe::BPE,
    pre_tokenizers::byte_level::ByteLevel,
    AddedToken,
};

/// A byte-level tokenizer (one token per byte, no merges) plus one special token, on disk.
fn tokenizer() -> Tokenizer {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prompt-tokenizer");
    std::fs::create_dir_all(&dir).unwrap();
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    let vocab: tokenizers::models::bpe::Vocab =
        alphabet.iter().enumerate().map(|(i, c)| (c.to_string(), i as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, vec![]).build().unwrap();
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(ByteLevel::default())).with_decoder(Some(ByteLevel::default()));
    inner.add_special_tokens(&[AddedToken::from("<|eos|>", true)]);
    inner.save(dir.join("tokenizer.json"), false).unwrap();
    Tokenizer::from_dir(&dir).unwrap()
}

#[test]
fn prompts_have_exactly_n_tokens() {
    let tok = tokenizer();
    let special = tok.token_id("<|eos|>").unwrap();
    let ordinary = tok.ordinary_ids();
    assert!(!ordinary.contains(&special) && ordinary.len() == 256);
    for n in [1usize, 17, 512, 4096] {
        for kind in [PromptKind::Text, PromptKind::Random] {
            let p = build_prompts(&tok, kind, n, 2, 9).unwrap();
            assert_eq!((p.batch(), p.len()), (2, n), "{kind:?} n={n}");
            assert!(p.row(0).iter().chain(p.row(1)).all(|id| ordinary.contains(id)), "{kind:?}: a special token");
            if n > 1 {
                assert_ne!(p.row(0), p.row(1), "{kind:?} n={n}: rows should differ");
            }
            assert_eq!(p, build_prompts(&tok, kind, n, 2, 9).unwrap(), "{kind:?}: deterministic");
        }
    }
    let text = build_prompts(&tok, PromptKind::Text, 40, 1, 0).unwrap();
    assert!(tok.decode(text.row(0)).unwrap().trim_start().starts_with("The history of computing"));
    assert!(build_prompts(&tok, PromptKind::Text, 0, 1, 0).is_err());
}
