"""The production profile refuses to start without a real secret key."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SNIPPET = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"


def run_with(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env_overrides})
    return subprocess.run(
        [sys.executable, "-c", SNIPPET], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_production_without_secret_key_refuses_to_start():
    result = run_with({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize("key", ["django-insecure-" + "x" * 60, "short-key"])
def test_production_with_a_development_or_short_key_refuses_to_start(key):
    result = run_with({"DEBUG": "false", "SECRET_KEY": key})
    assert result.returncode != 0
    assert "SECRET_KEY is a development or short key" in result.stderr


def test_production_with_a_real_key_starts():
    result = run_with({"DEBUG": "false", "SECRET_KEY": "k" * 20 + "9f8e7d6c5b4a39281706f5e4d3c2b1a0" + "z" * 10})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_debug_uses_a_development_key():
    result = run_with({"DEBUG": "true"})
    assert result.returncode == 0, result.stderr
