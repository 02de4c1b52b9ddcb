"""Baselines trained inside the same global world model as FoG (PPO)."""
