"""Experiment (not shipped): does more stage-two training move LGM's unseen PSNR? 400 more steps from the shipped weights."""
import dataclasses, time, torch
from pathlib import Path
from gsbook.methods import LGM
from gsbook.recipes.reconstructor import (ReconstructorRecipe, _train_stage, evaluate_reconstructor, load_reconstruction_data)
torch.set_num_threads(2)
model = LGM.from_shipped(device="cpu").float()
t = time.time()
base = evaluate_reconstructor(model, 100, "unseen", 2000, progress=False)
print("shipped", base, round(time.time() - t), "s", flush=True)
data = load_reconstruction_data(2000, "train", 0, progress=False)
stage = dataclasses.replace(ReconstructorRecipe.for_profile("cpu").refine_stage(), steps=400, lr=1e-4, warmup=10,
                            seed=7, checkpoint_every=100)
t = time.time()
hist, secs = _train_stage(model, stage, data, Path("/tmp/dc/lgm3/latest.pt"), False, False, torch.device("cpu"), "lgm+400")
print("trained", round(secs), "s; psnr by 100:", [round(sum(h[1] for h in hist[i:i+100]) / 100, 2) for i in range(0, 400, 100)], flush=True)
model.eval()
after = evaluate_reconstructor(model, 100, "unseen", 2000, progress=False)
print("after 400 more steps", after, flush=True)
