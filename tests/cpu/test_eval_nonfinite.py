"""`eval` on NaN or infinite weights fails with the name of the first non-finite tensor instead of
printing eval_loss=nan and exiting 0; finite weights still print the loss (argv[1] = gemmatron)."""
import shutil
import struct
import sys

from bad_input_util import Checks, eval_cpu, fixture_copy, read_st, token_ids, write_st

bin_ = sys.argv[1]
c = Checks()
tmp, model = fixture_copy("mha")
try:
    ids = token_ids(f"{tmp}/ids.txt")
    rc, out, err = eval_cpu(bin_, model, ids)
    c.check("finite weights: eval_loss printed, exit 0", rc == 0 and "eval_loss=" in out, err)
    for value, what in ((float("nan"), "NaN"), (float("inf"), "infinity")):
        header, data = read_st(f"{model}/model.safetensors")
        data = bytearray(data)
        name = "model.layers.1.mlp.down_proj.weight"
        off = header[name]["data_offsets"][0] + 4 * 7
        data[off:off + 4] = struct.pack("<f", value)
        write_st(f"{model}/model.safetensors", header, bytes(data))
        rc, out, err = eval_cpu(bin_, model, ids)
        c.check(f"{what} weight: exit 1", rc == 1, f"rc={rc} out={out!r} err={err!r}")
        c.check(f"{what} weight: no eval_loss line", "eval_loss" not in out, out)
        c.check(f"{what} weight: the message names {name}", name in err and "non-finite" in err, err)
        shutil.copy("tests/fixtures/mha/model.safetensors", f"{model}/model.safetensors")
finally:
    shutil.rmtree(tmp)
c.exit()
