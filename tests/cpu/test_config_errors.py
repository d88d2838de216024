"""Bad configurations name what is wrong (argv[1] = gemmatron):
  - `train --config DIR` says DIR is a directory (not "YAML syntax error");
  - `max_position_embeddings: 1` in config.json names that field (not the token file), in train and
    in eval;
  - absurd sizes (vocab_size 2e9, hidden_size 1e6, sizes whose product is beyond any machine) name the
    config.json field before any allocation."""
import json
import shutil
import sys
import tempfile

from bad_input_util import Checks, run

bin_ = sys.argv[1]
c = Checks()
tmp = tempfile.mkdtemp()


def model_with(name, **fields):
    d = f"{tmp}/{name}"
    shutil.copytree("tests/fixtures/mha", d)
    with open(f"{d}/config.json") as f:
        cfg = json.load(f)
    cfg.update(fields)
    with open(f"{d}/config.json", "w") as f:
        json.dump(cfg, f)
    return d


def train(*sets):
    args = [bin_, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", f"{tmp}/run"]
    for s in sets:
        args += ["--set", s]
    return run(args)


try:
    rc, out, err = run([bin_, "train", "--config", "configs", "--run-dir", f"{tmp}/run"])
    c.check("--config DIR: exit 1", rc == 1, f"rc={rc} {err!r}")
    c.check("--config DIR: says it is a directory", "configs: is a directory" in err and "YAML syntax" not in err, err)

    ids = f"{tmp}/ids.txt"
    with open(ids, "w") as f:
        f.write("3 4 5 6 7 8 9 10\n")
    m = model_with("pos1", max_position_embeddings=1)
    rc, out, err = run([bin_, "eval", "--model", m, "--data", ids, "--device", "cpu"])
    c.check("max_position_embeddings 1, eval: exit 1", rc == 1 and "eval_loss" not in out, f"rc={rc} {err!r}")
    c.check("max_position_embeddings 1, eval: names the field, not the token file",
            "max_position_embeddings = 1" in err and "ids.txt" not in err, err)
    rc, out, err = train(f"model.config={m}", "train.steps=1", "optim.warmup_steps=0")
    c.check("max_position_embeddings 1, train: names the field",
            rc != 0 and "max_position_embeddings = 1" in err and ".bin" not in err, err)

    for name, fields, want in (
        ("vocab", {"vocab_size": 2000000000}, "vocab_size = 2000000000"),
        ("hidden", {"hidden_size": 1000000}, "hidden_size = 1000000"),
        ("layers", {"num_hidden_layers": 100000}, "num_hidden_layers = 100000"),
        ("product", {"vocab_size": 16000000, "hidden_size": 60000, "intermediate_size": 1000000,
                     "num_hidden_layers": 4000}, "parameters (vocab_size 16000000"),
    ):
        m = model_with(name, **fields)
        rc, out, err = run([bin_, "eval", "--model", m, "--data", ids, "--device", "cpu"])
        c.check(f"{name}: eval exits 1 naming the field", rc == 1 and want in err and "limit" in err, f"rc={rc} {err!r}")
        c.check(f"{name}: not an allocation failure", ".c:" not in err, err)
        rc, out, err = train(f"model.config={m}", "train.steps=1", "optim.warmup_steps=0")
        c.check(f"{name}: train names the field", rc != 0 and want in err, f"rc={rc} {err!r}")
finally:
    shutil.rmtree(tmp)
c.exit()
