import subprocess
import sys


def run(*args):
    p = subprocess.run([sys.executable, "-m", "mdlm_probe", *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_generate_runs_on_tiny_random(tmp_path):
    out = tmp_path / "g.jsonl"
    rc, stdout, err = run("generate", "--ckpt", "tiny-random", "--prompt", "Ann has 10 pens.", "--gen-length", "8",
                          "--steps", "8", "--block-length", "8", "--out", str(out))
    assert rc == 0, err
    assert out.read_text().count("\n") == 1


def test_bad_checkpoint_is_one_line_exit_2():
    rc, _, err = run("generate", "--ckpt", "no-such-model", "--prompt", "x")
    assert rc == 2
    assert err.strip().count("\n") == 0 and "no-such-model" in err and "Traceback" not in err


def test_impossible_sampler_settings_exit_2():
    rc, _, err = run("generate", "--ckpt", "tiny-random", "--prompt", "x", "--gen-length", "30", "--block-length", "7")
    assert rc == 2 and "block-length" in err and "Traceback" not in err
