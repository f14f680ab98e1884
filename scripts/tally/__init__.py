"""Tally's Python toolbelt: simulate a payments world, land channel files, publish and archive the warehouse."""
