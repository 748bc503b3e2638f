"""Edge maps, the 4th input channel: the teacher's SMPL overlap edges (overlap.py, rendered from the GT meshes)
and the student's plug-ins of the EDGES registry (base.py: the interface): Canny (canny.py), RCF (rcf.py), HED
(hed.py), PiDiNet (pidinet.py) and SEE (see.py), the learned ones sharing learned.py; training.py trains them."""
