"""models: the policy with its instruct adapter, adapters that do not fit, and the device and
precision a machine gets (`auto` on the CPU included)."""

import time
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForSeq2SeqLM

from detox_helpers import models, sft
from detox_helpers.errors import DetoxError
from detox_helpers.models import choose_dtype, load_policy, pick_device
from detox_helpers.settings import load_settings
from detox_helpers.tiny import builder as tiny_builder


def test_policy_has_the_instruct_adapter_merged_in(tiny_settings):
    policy, tokenizer = load_policy(tiny_settings)
    assert not any("lora" in name for name, _ in policy.named_parameters())
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_settings.policy_model)
    with_adapter = PeftModel.from_pretrained(base, tiny_settings.instruct_adapter).eval()
    batch = tokenizer(["Summarize: #Person1#: Hello. #Person2#: Hi.\nSummary:"],
                      return_tensors="pt")
    decoder = torch.zeros((1, 1), dtype=torch.long)
    with torch.no_grad():
        merged_logits = policy(**batch, decoder_input_ids=decoder).logits
        adapter_logits = with_adapter(**batch, decoder_input_ids=decoder).logits
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-5)
    with with_adapter.disable_adapter(), torch.no_grad():
        base_logits = with_adapter(**batch, decoder_input_ids=decoder).logits
    assert not torch.allclose(merged_logits, base_logits, atol=1e-3)  # the adapter matters


def test_without_an_adapter_the_policy_is_the_base_model(tiny_settings, isolated_settings):
    settings = isolated_settings(instruct_adapter="")
    policy, _ = load_policy(settings)
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_settings.policy_model)
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(),
                                                  base.state_dict().values(), strict=True))


def test_a_missing_adapter_is_named(isolated_settings, tmp_path):
    missing = str(tmp_path / "no-adapter")
    settings = isolated_settings(instruct_adapter=missing)
    with pytest.raises(DetoxError, match="instruct adapter.*does not exist") as error:
        load_policy(settings)
    assert missing in str(error.value)


def test_an_adapter_for_another_model_is_a_clear_error(tiny_settings, isolated_settings,
                                                      tmp_path):
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(tiny_settings.policy_model)
    config = tiny_builder.new_tiny_t5(len(tokenizer), seed=0).config
    config.d_kv = 32                               # q/v projections of another shape
    other = T5ForConditionalGeneration(config)
    lora = sft.lora_config(r=2, alpha=4, dropout=0.0, target_modules=["q", "v"])
    sft.train_instruct_adapter(other, tokenizer, ["a"], ["b"], tmp_path / "other",
                               config=lora, steps=1, learning_rate=1e-3, batch_size=1,
                               progress=False)
    settings = isolated_settings(instruct_adapter=str(tmp_path / "other"))
    with pytest.raises(DetoxError, match="does not fit the policy model"):
        load_policy(settings)


def test_an_empty_folder_is_not_an_adapter(isolated_settings, tmp_path):
    (tmp_path / "empty").mkdir()
    settings = isolated_settings(instruct_adapter=str(tmp_path / "empty"))
    with pytest.raises(DetoxError, match="could not be loaded.*adapter_config.json"):
        load_policy(settings)


@pytest.mark.parametrize("gpu, bf16, setting, device, dtype", [
    (False, False, "auto", "cpu", torch.float32),
    (True, True, "auto", "cuda", torch.bfloat16),   # a GPU that has bfloat16, as the lab used
    (True, False, "auto", "cuda", torch.float32),   # an older GPU
    (True, True, "float32", "cuda", torch.float32),  # a setting wins over auto
    (False, False, "bfloat16", "cpu", torch.bfloat16),
], ids=["cpu", "gpu-bf16", "gpu-old", "gpu-float32-set", "cpu-bfloat16-set"])
def test_device_and_precision_follow_the_machine(gpu, bf16, setting, device, dtype, monkeypatch):
    # The machine is faked: CUDA's answers are what pick_device and choose_dtype ask, and the
    # CPU has no native bfloat16 (the CPU's own cases are below).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: False)
    settings = load_settings("full", environ={}, precision=setting)
    assert pick_device(settings).type == device
    assert choose_dtype(settings, pick_device(settings))[0] == dtype


@pytest.mark.parametrize("width, dtype", [((768, 2048), torch.bfloat16),
                                          ((64, 128), torch.float32)],
                         ids=["flan-t5-base", "tiny-world"])
def test_auto_picks_one_precision_per_machine_whatever_a_timing_reads(width, dtype,
                                                                      monkeypatch):
    """The issue's three fresh processes on one CPU with native bfloat16 timed flan-t5-base's
    layer at 2.3x, 2.9x and 1.9x (under load; 3.9x and 6.1x idle) against a 2x bar, and ran in
    bfloat16, bfloat16, float32. Here every layer a process might time reads another ratio
    (the clock runs at another speed each time): the choice, and the line that states it, must
    not move, because `auto` times nothing."""
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(models, "model_width", lambda settings: width)
    settings = load_settings("full", environ={})
    picked = set()
    for reading in (2.3, 2.9, 1.9, 6.1, 0.8):
        ticks = iter(range(10**6))
        monkeypatch.setattr(time, "perf_counter", lambda r=reading, t=ticks: next(t) * r)
        picked.add(models.choose_dtype(settings, torch.device("cpu")))
    assert len(picked) == 1, picked
    chosen, why = picked.pop()
    assert chosen == dtype and "x as fast" not in why and str(width[0]) in why
    assert why.startswith("auto: ")


def test_a_cpu_without_native_bfloat16_stays_float32_at_any_width(monkeypatch):
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(models, "model_width", lambda settings: (4096, 11008))
    chosen, why = models.choose_dtype(load_settings("full", environ={}), torch.device("cpu"))
    assert chosen == torch.float32 and why == "auto: no native bfloat16 on this CPU"


def test_the_width_read_is_the_policy_own(tiny_settings):
    config = AutoConfig.from_pretrained(tiny_settings.policy_model)
    assert models.model_width(tiny_settings) == (config.d_model, config.d_ff)


def test_native_bfloat16_is_read_off_the_processor():
    flags = Path("/proc/cpuinfo")
    if not flags.exists():
        pytest.skip("no /proc/cpuinfo to compare with")
    words = set(flags.read_text().split())
    assert models.cpu_has_native_bf16() == bool({"avx512_bf16", "amx_bf16"} & words)


def test_a_cuda_device_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DetoxError, match="no CUDA GPU is visible"):
        pick_device(load_settings("full", environ={}, device="cuda:1"))
