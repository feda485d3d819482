"""Frozen text encoders (offline): MiniLM by default, CLIP from a local directory, open_clip from a local file."""

from c2gr_fed.text.encoders import CLIPEncoder, MiniLMEncoder, TextEncoder, build_text_encoder

__all__ = ["TextEncoder", "build_text_encoder", "MiniLMEncoder", "CLIPEncoder"]
