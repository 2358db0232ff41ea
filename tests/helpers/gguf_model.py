"""A tiny llama-architecture model in GGUF with random weights, made here: what `ollama run` answers with on the testbed
(nothing is downloaded). Its vocabulary is SentencePiece's byte fallback plus the 26 letters as word pieces; the
output rows of every token but the letters are zero, so a greedy answer is letters and never the end token at once."""

from __future__ import annotations

from pathlib import Path

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def write_tiny_llama(path: Path, seed: int = 7) -> Path:
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    specials, byte_tokens = ["<unk>", "<s>", "</s>"], [f"<0x{i:02X}>" for i in range(256)]
    tokens = specials + byte_tokens + ["\u2581" + c for c in LETTERS]
    n_vocab, n_embd, n_layer, n_head, n_ff = len(tokens), 64, 2, 4, 128
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("coderstack-tiny")
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * (len(specials) + len(byte_tokens)) + [-1.0 - i for i in range(len(LETTERS))])
    w.add_token_types([2, 3, 3] + [6] * len(byte_tokens) + [1] * len(LETTERS))  # unknown, control, byte, normal
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    w.add_tensor("token_embd.weight", rand(n_vocab, n_embd))
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(p + name + ".weight", rand(n_embd, n_embd))
        w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", rand(n_ff, n_embd))
        w.add_tensor(p + "ffn_down.weight", rand(n_embd, n_ff))
        w.add_tensor(p + "ffn_up.weight", rand(n_ff, n_embd))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    out = rand(n_vocab, n_embd)
    out[: len(specials) + len(byte_tokens)] = 0.0
    w.add_tensor("output.weight", out)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
