"""QLoRA / LoRA fine-tuning for stage sft_qlora (TRL SFTTrainer + PEFT + bitsandbytes).

- bnb_guard: keeps bitsandbytes' CPU inference repacking away from 4-bit weights that train.
- model: tokenizer, 4-bit (NF4/FP4) or 16-bit base, LoraConfig.
- data: the prompt/completion splits of stage sft_data.
- resume: where checkpoints live (outside DVC outs) and which one a rerun resumes from.
- trainer: SFTConfig, the run itself, its metrics and loss curve.
- launch: running the stage under `accelerate launch` (several processes).

Heavy imports (torch, transformers, trl, peft, bitsandbytes) happen inside functions.
"""
