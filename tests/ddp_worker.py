"""Run by tests/test_distributed.py under ``torchrun --nproc_per_node 2``: a few steps of each trainer.

After each trainer, every rank saves the parameters and buffers of the model it holds to
``<out>/<what>_rank<r>.pt`` and its history to ``<out>/<what>_history_rank<r>.csv``, so the test
can check that the ranks ended with the same model and resumed from the same checkpoint.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py CACHE OUT
"""

import sys
from pathlib import Path

import numpy as np
import torch


def main(cache_path: str, out: str) -> None:
    from cardigan_utils import distributed
    from cardigan_utils.images import train_spade
    from cardigan_utils.segmentation import train_segmenter
    from cardigan_utils.shapes import train_vae
    from cardigan_utils.data import load_cache

    torch.set_num_threads(1)
    ctx = distributed.context()
    assert ctx.world_size == 2, ctx
    cache, out = load_cache(cache_path), Path(out)
    common = dict(device="cpu", seed=3, progress_bar=False)

    # the modules each rank trains (distributed.wrap gets them before wrapping them in DDP)
    held: list[torch.nn.Module] = []
    wrap = distributed.wrap

    def keep(model, ctx_, device):
        held.append(model)
        return wrap(model, ctx_, device)

    distributed.wrap = keep

    def save(what: str, names: list[str], history) -> None:
        state = {f"{n}.{k}": v.detach().cpu().clone() for n, m in zip(names, held) for k, v in m.state_dict().items()}
        torch.save(state, out / f"{what}_rank{ctx.rank}.pt")
        history.to_csv(out / f"{what}_history_rank{ctx.rank}.csv", index=False)
        held.clear()

    vae = dict(latent_dim=8, channels=[4, 8, 8, 8], batch_size=8, **common)
    save("vae", ["vae"], train_vae(cache, run_dir=out / "vae", max_epochs=1, **vae))
    save("vae_resumed", ["vae"], train_vae(cache, run_dir=out / "vae", max_epochs=2, **vae))
    save("spade", ["generator", "discriminator", "encoder"],
         train_spade(cache, run_dir=out / "spade", ngf=4, hidden_channels=8, ndf=8, z_dim=8, max_epochs=1,
                     batch_size=4, amp=False, **common))
    tr, va = cache.indices("train"), cache.indices("val")
    save("segmenter", ["unet"],
         train_segmenter([(cache.images[tr], cache.labels[tr])], val=(np.asarray(cache.images[va]), np.asarray(cache.labels[va])),
                         run_dir=out / "segmenter", channels=(4, 8, 16), num_res_units=1, max_epochs=2, batch_size=4,
                         steps_per_epoch=3, amp=False, **common))
    distributed.close(ctx)


if __name__ == "__main__":
    main(*sys.argv[1:3])
