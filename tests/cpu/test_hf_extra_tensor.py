"""A tensor the model has no place for (model.layers.5.* in a 2-layer model, an unknown name) is
refused by name when an HF checkpoint is loaded, instead of being ignored (argv[1] = gemmatron)."""
import shutil
import sys

from bad_input_util import Checks, eval_cpu, fixture_copy, read_st, token_ids, write_st

bin_ = sys.argv[1]
c = Checks()
tmp, model = fixture_copy("mha")
try:
    ids = token_ids(f"{tmp}/ids.txt")
    rc, out, err = eval_cpu(bin_, model, ids)
    c.check("the fixture itself loads", rc == 0, err)
    for extra in ("model.layers.5.input_layernorm.weight", "model.layers.02.input_layernorm.weight",
                  "model.layers.0.self_attn.rotary.weight", "lm_head.weight"):
        header, data = read_st("tests/fixtures/mha/model.safetensors")
        src = header["model.norm.weight"]
        n = src["data_offsets"][1] - src["data_offsets"][0]
        header[extra] = {"dtype": "F32", "shape": src["shape"], "data_offsets": [len(data), len(data) + n]}
        write_st(f"{model}/model.safetensors", header, data + b"\0" * n)
        rc, out, err = eval_cpu(bin_, model, ids)
        c.check(f"{extra}: refused, exit 1", rc == 1 and "eval_loss" not in out, f"rc={rc} {err!r}")
        c.check(f"{extra}: the message names it", extra in err and "not part of this model" in err, err)
    # What transformers ignores too: a tied lm_head.weight of the embedding's shape, rotary inv_freq.
    for extra, like in (("lm_head.weight", "model.embed_tokens.weight"),
                        ("model.layers.0.self_attn.rotary_emb.inv_freq", "model.norm.weight")):
        header, data = read_st("tests/fixtures/mha/model.safetensors")
        src = header[like]
        n = src["data_offsets"][1] - src["data_offsets"][0]
        header[extra] = {"dtype": src["dtype"], "shape": src["shape"],
                         "data_offsets": [len(data), len(data) + n]}
        write_st(f"{model}/model.safetensors", header, data + b"\0" * n)
        rc, out, err = eval_cpu(bin_, model, ids)
        c.check(f"{extra} ({like}'s shape): accepted as transformers does", rc == 0, err)
finally:
    shutil.rmtree(tmp)
c.exit()
