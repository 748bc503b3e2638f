"""Edge maps: SEFD Canny (canny.py) and SMPL overlap edges (overlap.py)."""
