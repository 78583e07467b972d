"""Tiny randomly initialised students built in a temporary folder: no hub, seconds to train."""

from __future__ import annotations

from pathlib import Path


def make_tokenizer(texts: list[str], folder: Path, vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(folder)
    return fast


def make_llama(folder: Path, tokenizer, *, hidden: int = 128, layers: int = 2, init_range: float = 0.02,
               f16_exact: bool = False) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=True, initializer_range=init_range)
    model = LlamaForCausalLM(config)
    if f16_exact:  # weights a float16 file holds exactly: conversions can then be compared bit for bit
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(parameter.half().float())
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_t5(folder: Path, tokenizer, *, d_model: int = 128, layers: int = 2) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=32, d_ff=d_model * 2, num_layers=layers,
                      num_decoder_layers=layers, num_heads=4, dropout_rate=0.0, relative_attention_num_buckets=64,
                      relative_attention_max_distance=512, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
