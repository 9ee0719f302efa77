"""Experiment (not shipped), continued: 2 × 600 more stage-two steps after the first 400; PSNR on 100 unseen after each."""
import dataclasses, time, torch
from pathlib import Path
from gsbook.methods import LGM
from gsbook.recipes.common import load_checkpoint
from gsbook.recipes.reconstructor import (ReconstructorRecipe, _train_stage, evaluate_reconstructor, load_reconstruction_data)
torch.set_num_threads(2)
model = LGM.from_shipped(device="cpu").float()
state = torch.load("/tmp/dc/lgm3/latest.pt", map_location="cpu", weights_only=False)
model.load_state_dict(state["model"] if isinstance(state["model"], dict) else state["model"].state_dict())
print("loaded", evaluate_reconstructor(model, 100, "unseen", 2000, progress=False), flush=True)
data = load_reconstruction_data(2000, "train", 0, progress=False)
done = 400
for k in range(2):
    stage = dataclasses.replace(ReconstructorRecipe.for_profile("cpu").refine_stage(), steps=600, lr=1e-4, warmup=10,
                                seed=8 + k, checkpoint_every=600)
    hist, secs = _train_stage(model, stage, data, Path(f"/tmp/dc/lgm3/more{k}.pt"), False, False, torch.device("cpu"), "lgm+")
    done += 600
    model.eval()
    print(f"after {done} more steps ({round(secs)} s):", evaluate_reconstructor(model, 100, "unseen", 2000, progress=False),
          "train psnr", round(sum(h[1] for h in hist[-100:]) / 100, 2), flush=True)
