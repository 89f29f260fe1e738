"""The shipped accelerate configs: found by ``cwpo accelerate-config``, accepted by accelerate's own
launch validation, and each turning on the strategy its name says."""

import pytest
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

from cwpo.accelerate_configs import ACCELERATE_CONFIGS, accelerate_config
from cwpo.cli.main import main
from cwpo.errors import ConfigError


def _launch_env(name: str) -> dict[str, str]:
    """The environment ``accelerate launch --config_file <name>.yaml`` gives its processes (as its
    launch_command builds it, without starting anything)."""
    args = launch_command_parser().parse_args(["--config_file", str(accelerate_config(name)), "train.py"])
    args, defaults, mp_from_config = _validate_launch_command(args)
    if args.use_deepspeed:
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    assert args.num_processes == 2  # a placeholder: --num_processes on the command line overrides it
    return env


def test_ddp_and_fsdp_configs():
    ddp = _launch_env("ddp")
    assert "ACCELERATE_USE_FSDP" not in ddp and "ACCELERATE_USE_DEEPSPEED" not in ddp
    fsdp = _launch_env("fsdp")
    assert fsdp["ACCELERATE_USE_FSDP"] == "true" and fsdp["FSDP_VERSION"] == "2"
    assert fsdp["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"  # save_model writes one loadable folder


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_configs_are_gpu_only_and_set_their_stage(stage):
    env = _launch_env(f"zero{stage}")
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
    assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == str(stage)
    assert ACCELERATE_CONFIGS[f"zero{stage}"].gpu_only


def test_cli_prints_a_path_or_lists_them(capsys):
    assert main(["accelerate-config", "fsdp"]) == 0
    assert capsys.readouterr().out.strip() == str(accelerate_config("fsdp"))
    assert accelerate_config("fsdp").is_file()
    assert main(["accelerate-config"]) == 0
    listing = capsys.readouterr().out
    assert all(str(c.path) in listing for c in ACCELERATE_CONFIGS.values())
    assert main(["accelerate-config", "zero4"]) == 2
    assert "unknown accelerate config 'zero4'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="ddp, fsdp, zero2, zero3"):
        accelerate_config("fsdp2")
