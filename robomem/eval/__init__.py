"""Evaluation: memory-QA episode generation from real AI2-THOR/RoomR data, and scoring."""
