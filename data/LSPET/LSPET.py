"""LSPET (LSP Extended, 10000 images): PCKh@0.6 of the projected mesh joints, as LSP (the head segment as head size);
SEFD ships a test file for it but reports no number. Files: data/LSPET/joints.mat ([14,3,10000]) and
data/LSPET/images/im00001.jpg ... (data/formats/lsp_joints.py).
"""
from data.LSP.LSP import LSP
from data.registry import DATASETS


@DATASETS.register()
class LSPET(LSP):
    name = 'LSPET'
    layout = 'data/LSPET/joints.mat ([14,3,10000]) and data/LSPET/images/im00001.jpg ... im10000.jpg'

    def test_images(self, joints):
        """All of them: LSPET has one split."""
        return [f'im{i:05d}.jpg' for i in range(1, 1 + len(joints))], joints
