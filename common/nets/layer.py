"""Small layer builders and the graph-convolution blocks of RotationNet."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_conv_layers(feat_dims, kernel=3, stride=1, padding=1, bnrelu_final=True):
    """Conv(+BN+ReLU) chain over feat_dims; Sequential indices match the 3DCrowdNet checkpoints."""
    layers = []
    for i in range(len(feat_dims) - 1):
        layers.append(nn.Conv2d(feat_dims[i], feat_dims[i + 1], kernel, stride=stride, padding=padding))
        if i < len(feat_dims) - 2 or bnrelu_final:
            layers += [nn.BatchNorm2d(feat_dims[i + 1]), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def make_linear_layers(feat_dims, relu_final=True, use_bn=False):
    layers = []
    for i in range(len(feat_dims) - 1):
        layers.append(nn.Linear(feat_dims[i], feat_dims[i + 1]))
        if i < len(feat_dims) - 2 or relu_final:
            if use_bn:
                layers.append(nn.BatchNorm1d(feat_dims[i + 1]))
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def init_head_weights(module):
    """The reference's head init: Conv/ConvTranspose N(0, 0.001) bias 0, BN2d (1, 0), Linear N(0, 0.01) bias 0.

    GraphConvBlock's per-vertex weights are Linear layers in the reference, so they get the Linear init.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=1e-3)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1e-2)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, GraphConvBlock):
            nn.init.normal_(m.weight, std=1e-2)
            nn.init.zeros_(m.bias)


def graph_adjacency(num_joints, skeleton=(), flip_pairs=(), normalize=True):
    """D^-1/2 (A + I) D^-1/2 with A = skeleton + flip-pair edges (undirected), as a float32 [J,J] tensor."""
    adj = torch.eye(num_joints)
    for a, b in tuple(skeleton) + tuple(flip_pairs):
        adj[a, b] = adj[b, a] = 1.0
    if normalize:
        d = adj.sum(0).rsqrt()   # column sums; A is symmetric so rows give the same
        adj = d[:, None] * adj * d[None, :]
    return adj


class GraphConvBlock(nn.Module):
    """Per-vertex Linear + BatchNorm1d, then neighbour averaging by the normalised adjacency, then ReLU.

    The J per-vertex Linear layers are one [J, in, out] weight applied with a batched matmul, and the J
    BatchNorm1d(out) are one BatchNorm1d(J*out) (identical statistics: both normalise each (vertex,
    channel) over the batch). Checkpoints of the reference layout (`fcbn_list.{j}.0/1.*`) are converted
    on load.
    """

    def __init__(self, adj, dim_in, dim_out):
        super().__init__()
        adj = torch.as_tensor(adj, dtype=torch.float32)
        self.num_joints, self.dim_in, self.dim_out = adj.shape[0], dim_in, dim_out
        # Fixed by the skeleton, so not saved: a checkpoint from the reference has none either.
        self.register_buffer('adj', adj, persistent=False)
        self.weight = nn.Parameter(torch.empty(self.num_joints, dim_in, dim_out))
        self.bias = nn.Parameter(torch.zeros(self.num_joints, dim_out))
        self.bn = nn.BatchNorm1d(self.num_joints * dim_out)
        self.reset_parameters()

    def reset_parameters(self):
        # nn.Linear's default init, per vertex.
        bound = self.dim_in ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):                                   # x: [B, J, dim_in]
        B, J = x.shape[:2]
        w, b = self.weight, self.bias
        if torch.is_autocast_enabled(x.device.type):
            dt = torch.get_autocast_dtype(x.device.type)
            x, w, b = x.to(dt), w.to(dt), b.to(dt)
        else:
            w, b = w.to(x.dtype), b.to(x.dtype)
        h = torch.baddbmm(b[:, None, :], x.transpose(0, 1), w)      # [J, B, out]
        h = self.bn(h.transpose(0, 1).reshape(B, J * self.dim_out)).view(B, J, self.dim_out)
        h = torch.matmul(self.adj.to(h.dtype), h)                   # [J,J] @ [B,J,C]
        return F.relu(h)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        old = f'{prefix}fcbn_list.'
        if f'{old}0.0.weight' in state_dict:
            J = self.num_joints
            pop = lambda j, i, name: state_dict.pop(f'{old}{j}.{i}.{name}')  # noqa: E731
            state_dict[f'{prefix}weight'] = torch.stack([pop(j, 0, 'weight').t() for j in range(J)])
            state_dict[f'{prefix}bias'] = torch.stack([pop(j, 0, 'bias') for j in range(J)])
            for name in ('weight', 'bias', 'running_mean', 'running_var'):
                state_dict[f'{prefix}bn.{name}'] = torch.cat([pop(j, 1, name) for j in range(J)])
            nbt = [state_dict.pop(f'{old}{j}.1.num_batches_tracked', None) for j in range(J)]
            if nbt[0] is not None:
                state_dict[f'{prefix}bn.num_batches_tracked'] = nbt[0]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self):
        return f'joints={self.num_joints}, in={self.dim_in}, out={self.dim_out}'


class GraphResBlock(nn.Module):
    """Two GraphConvBlocks plus the identity (no activation after the sum, as in the reference)."""

    def __init__(self, adj, dim):
        super().__init__()
        self.graph_block1 = GraphConvBlock(adj, dim, dim)
        self.graph_block2 = GraphConvBlock(adj, dim, dim)

    def forward(self, x):
        return self.graph_block2(self.graph_block1(x)) + x
