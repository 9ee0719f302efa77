"""The book's text-conditioned 2D diffusion prior (§1). Not trained yet: see issue "The SDS critic"."""
