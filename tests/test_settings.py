import dataclasses
from pathlib import Path

import pytest

from detox_helpers.errors import DetoxError
from detox_helpers.layout import TINY_WORLD_DIR
from detox_helpers.settings import (
    DEFAULT_PROFILE,
    FIELD_NAMES,
    PROMPT_TEMPLATE,
    Settings,
    label_names,
    load_settings,
)


def test_full_profile_holds_the_original_lab_values():
    s = load_settings("full", environ={})
    assert s.policy_model == "google/flan-t5-base"
    assert s.reward_model == "facebook/roberta-hate-speech-dynabench-r4-target"
    assert s.dataset == "knkarthick/dialogsum"
    assert (s.min_dialogue_chars, s.max_dialogue_chars) == (200, 1000)
    assert (s.lora_r, s.lora_alpha, s.lora_dropout, s.lora_targets) == (32, 32, 0.05, ["q", "v"])
    assert (s.learning_rate, s.batch_size, s.mini_batch_size, s.ppo_epochs) == (1.41e-5, 16, 4, 1)
    assert (s.output_min_length, s.output_max_length, s.top_k, s.top_p) == (100, 400, 0, 1.0)
    assert s.reward_input == "summary"
    assert PROMPT_TEMPLATE.strip().endswith("Summary:")


def test_tiny_is_the_default_and_reads_the_world_shipped_in_the_package(tmp_path):
    s = load_settings(environ={}, artifacts_dir=tmp_path)
    assert s.profile == "tiny" and s.artifacts_dir == str(tmp_path)
    for path in (s.dataset, s.policy_model, s.instruct_adapter, s.reward_model):
        assert path.startswith(str(TINY_WORLD_DIR)) and Path(path).exists()


def test_settings_built_directly_name_their_profile():
    # No silent second default: load_settings() picks DEFAULT_PROFILE, Settings() none at all.
    assert load_settings(environ={}).profile == DEFAULT_PROFILE == "tiny"
    with pytest.raises(TypeError, match="profile"):
        Settings()
    loaded = load_settings("full", environ={})
    assert Settings(profile="full") == dataclasses.replace(loaded, artifacts_dir="artifacts")


def test_environment_chooses_profile_and_overrides_fields():
    env = {"DETOX_PROFILE": "full", "DETOX_BATCH_SIZE": "8", "DETOX_ADAPTIVE_KL": "no",
           "DETOX_TOP_P": "0.9", "DETOX_REWARD_INPUT": "prompt+summary"}
    s = load_settings(environ=env)
    assert (s.profile, s.batch_size, s.adaptive_kl, s.top_p) == ("full", 8, False, 0.9)
    assert s.reward_input == "prompt+summary"


def test_keywords_win_over_environment():
    s = load_settings(environ={"DETOX_BATCH_SIZE": "8"}, batch_size=12, mini_batch_size=3)
    assert (s.batch_size, s.mini_batch_size) == (12, 3)
    assert load_settings("full", environ={"DETOX_PROFILE": "tiny"}).profile == "full"


def test_an_int_is_accepted_for_a_float_field():
    assert load_settings(environ={}, learning_rate=1).learning_rate == 1.0


@pytest.mark.parametrize("call, names", [
    (lambda: load_settings("huge", environ={}), ["huge", "full", "tiny"]),
    (lambda: load_settings(environ={"DETOX_PROFILE": "huge"}), ["huge"]),
    (lambda: load_settings(environ={}, batchsize=3), ["batchsize"]),
    (lambda: load_settings(environ={"DETOX_BATCHSIZE": "3"}), ["DETOX_BATCHSIZE"]),
    (lambda: load_settings(environ={"DETOX_BATCH_SIZE": "many"}), ["DETOX_BATCH_SIZE", "many"]),
    (lambda: load_settings(environ={"DETOX_ADAPTIVE_KL": "maybe"}), ["DETOX_ADAPTIVE_KL"]),
    (lambda: load_settings(environ={}, batch_size="8"), ["batch_size", "int"]),
    (lambda: load_settings(environ={}, batch_size=10), ["batch_size=10", "mini_batch_size=4"]),
    (lambda: load_settings(environ={}, top_p=0.0), ["top_p=0.0"]),
    (lambda: load_settings(environ={}, test_fraction=1.0), ["test_fraction=1.0"]),
    (lambda: load_settings(environ={}, min_dialogue_chars=900, max_dialogue_chars=100),
     ["min_dialogue_chars=900"]),
    (lambda: load_settings(environ={}, output_min_length=50, output_max_length=50),
     ["output_min_length=50"]),
    (lambda: load_settings(environ={}, reward_input="dialogue"), ["reward_input"]),
    (lambda: load_settings(environ={}, precision="fp8"), ["precision"]),
    (lambda: load_settings(environ={}, device="tpu"), ["device"]),
    (lambda: load_settings(environ={}, prompt_template="Summarise: {dialogue}"),
     ["prompt_template"]),
    (lambda: load_settings(environ={}, lora_dropout=1.5), ["lora_dropout"]),
    (lambda: load_settings(environ={"DETOX_SEED": "-1"}), ["seed=-1", "2**32"]),
    (lambda: load_settings(environ={"DETOX_SEED": "99999999999"}), ["seed=99999999999"]),
    # the last PPO step seeds numpy with seed + max_ppo_steps - 1, which must stay < 2**32
    (lambda: load_settings(environ={}, seed=2**32 - 9, max_ppo_steps=10), ["seed=4294967287"]),
    (lambda: load_settings(environ={"DETOX_LEARNING_RATE": "inf"}),
     ["learning_rate=inf", "finite"]),
    (lambda: load_settings(environ={"DETOX_TARGET_KL": "nan"}), ["target_kl=nan", "finite"]),
    (lambda: load_settings(environ={}, init_kl_coef=float("inf")), ["init_kl_coef=inf"]),
    (lambda: load_settings(environ={}, sft_learning_rate=0.0), ["sft_learning_rate=0.0", "> 0"]),
    (lambda: load_settings(environ={}, rloo_k=1), ["rloo_k=1", "at least 2"]),
    (lambda: load_settings(environ={}, prompt_template="Hi {name}: {dialogue}\nSummary:"),
     ["prompt_template", "['name', 'dialogue']", "'{{' or '}}'"]),
    (lambda: load_settings(environ={}, prompt_template="{dialogue} {dialogue} Summary:"),
     ["prompt_template", "exactly once"]),
    (lambda: load_settings(environ={}, prompt_template="Read } {dialogue} Summary:"),
     ["prompt_template", "lone"]),
    (lambda: load_settings(environ={}, toxic_labels=" , "), ["toxic_labels"]),
    (lambda: load_settings(environ={}, toxic_labels="hate,NotHate"), ["toxic_labels", "never"]),
])
def test_bad_settings_are_clear_errors_naming_the_culprit(call, names):
    with pytest.raises(DetoxError) as error:
        call()
    for name in names:
        assert name in str(error.value)


def test_seeds_at_the_ends_of_the_range_and_a_template_with_literal_braces_are_accepted():
    assert load_settings(environ={}, seed=0).seed == 0
    assert load_settings(environ={}, seed=2**32 - 10, max_ppo_steps=10).seed == 2**32 - 10
    template = "Summarise {dialogue} (in {{braces}})\nSummary:"
    s = load_settings(environ={}, prompt_template=template)
    assert s.prompt_template.format(dialogue="D") == "Summarise D (in {braces})\nSummary:"


def test_toxic_labels_are_read_in_any_case():
    s = load_settings(environ={"DETOX_TOXIC_LABELS": " HATE, Offensive "})
    assert label_names(s.toxic_labels) == ["hate", "offensive"]
    assert label_names(load_settings(environ={}).toxic_labels) == ["hate"]


def test_settings_are_frozen_and_every_field_is_documented():
    s = load_settings(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch_size = 3
    import inspect

    source = inspect.getsource(Settings)
    for name in FIELD_NAMES:
        line = next(i for i, text in enumerate(source.splitlines()) if text.strip().startswith(
            f"{name}:"))
        assert source.splitlines()[line + 1].strip().startswith('"""'), f"{name} lacks a docstring"


def test_a_named_run_has_its_own_folders_and_shares_the_data_cache(tmp_path):
    named = load_settings(environ={}, artifacts_dir=tmp_path, run_name="kl-free")
    plain = load_settings(environ={}, artifacts_dir=tmp_path)
    assert named.layout.eval_dir == tmp_path / "runs" / "kl-free" / "eval"
    assert named.layout.final_adapter.is_relative_to(tmp_path / "runs" / "kl-free")
    assert plain.layout.final_adapter.parent.parent == tmp_path
    assert named.layout.data_cache("k") == plain.layout.data_cache("k")
    with pytest.raises(DetoxError, match="run_name"):
        load_settings(environ={}, run_name="../elsewhere")


def test_paths_are_shown_relative_to_the_checkout():
    from detox_helpers.layout import TINY_WORLD_DIR, shown

    assert shown(TINY_WORLD_DIR / "policy-base") == "detox_helpers/tiny/tiny-world/policy-base"
    assert shown("/somewhere/else") == "/somewhere/else"
