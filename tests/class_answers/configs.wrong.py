lora_config = LoraConfig(
    r=settings.lora_r, lora_alpha=settings.lora_alpha,
    lora_dropout=settings.lora_dropout, target_modules=settings.lora_targets,
    bias='none', task_type=TaskType.CAUSAL_LM)  # a decoder-only model's
ppo_config = PPOConfig(
    learning_rate=settings.learning_rate, batch_size=settings.batch_size,
    mini_batch_size=settings.mini_batch_size, ppo_epochs=settings.ppo_epochs,
    init_kl_coef=settings.init_kl_coef, adap_kl_ctrl=settings.adaptive_kl,
    target=settings.target_kl, horizon=settings.kl_horizon,
    seed=settings.seed, **plumbing)
