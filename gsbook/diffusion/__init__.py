"""The book's diffusion priors (trained on ShapeWorld; see §1). Filled in by the SDS-critic work."""
