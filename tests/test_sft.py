import torch
from peft import PeftModel
from transformers import AutoTokenizer

from detox_helpers import sft
from detox_helpers.tiny import builder as tiny_builder


def pairs(settings, count=16):
    from detox_helpers.data import load_splits

    train = load_splits(settings)["train"].select(range(count))
    return list(train["query"]), list(train["summary"])


def test_labels_mask_padding_and_prompts_are_right_padded(tiny_settings):
    tokenizer = AutoTokenizer.from_pretrained(tiny_settings.policy_model)
    batch = sft.encode_pairs(tokenizer, ["short", "a much longer prompt than the other"],
                             ["one", "two words here"])
    assert batch["attention_mask"][0, 0] == 1 and batch["attention_mask"][0, -1] == 0
    assert (batch["labels"][0] == -100).any() and not (batch["labels"] == 0).any()


def test_fine_tuning_lowers_the_loss(tiny_settings):
    tokenizer = AutoTokenizer.from_pretrained(tiny_settings.policy_model)
    model = tiny_builder.new_tiny_t5(len(tokenizer), seed=3)
    prompts, summaries = pairs(tiny_settings)
    losses = sft.train_seq2seq(model, tokenizer, prompts, summaries, steps=30,
                               learning_rate=3e-3, batch_size=8, seed=0, progress=False)
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_instruct_adapter_is_saved_and_leaves_the_base_weights_alone(tiny_settings, tmp_path):
    from transformers import T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(tiny_settings.policy_model)
    base = T5ForConditionalGeneration.from_pretrained(tiny_settings.policy_model)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    prompts, summaries = pairs(tiny_settings)
    config = sft.lora_config(r=4, alpha=8, dropout=0.0, target_modules=["q", "v"])
    sft.train_instruct_adapter(base, tokenizer, prompts, summaries, tmp_path / "adapter",
                               config=config, steps=5, learning_rate=1e-3, batch_size=4,
                               progress=False)
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    after = base.state_dict()
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter")
    lora_b = [p for n, p in loaded.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # the adapter learned something
