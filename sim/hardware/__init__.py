"""Hardware and models: the GPU and model catalogue (`catalog`) and what a model's shape
implies for memory on a GPU (`memory`: weight bytes, KV bytes per token, KV capacity)."""
