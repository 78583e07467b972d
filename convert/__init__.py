"""Conversion: checkpoints -> GGUF (llama.cpp) and CTranslate2 int8 model bundles."""
