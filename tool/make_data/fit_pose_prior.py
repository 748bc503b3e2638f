"""Fit the pose prior of the demo's refinement (common/body/fitting.py) to the synthetic pose generator.

    python tool/make_data/fit_pose_prior.py                    # -> common/body/pose_prior.npz
    python tool/make_data/fit_pose_prior.py --samples 50000 --components 12 --out /tmp/prior.npz

A Gaussian mixture (SMPLify's kind of prior: full covariances, EM) over the axis-angle of the 21 body joints
(SMPL pose[3:66]; the hands are never posed) of poses drawn from tool/make_data/synthetic/poses.py, the poses the
synthetic crowd set is made of. common/ cannot import tool/, so the prior travels as data; rerun this after changing the
pose library. The same arguments give the same prior.
"""
import argparse
from pathlib import Path

import numpy as np

from common.body.fitting import POSE_PRIOR_PATH, PRIOR_DIMS
from common.errors import UserError, run_cli
from common.io import atomic_np_save


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--samples', type=int, default=20000, help='poses drawn from the generator')
    ap.add_argument('--components', type=int, default=8, help='Gaussians of the mixture')
    ap.add_argument('--iters', type=int, default=100, help='EM iterations')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default=str(POSE_PRIOR_PATH))
    args = ap.parse_args(argv)
    for key in ('samples', 'components', 'iters'):
        if getattr(args, key) < 1:
            raise UserError(f'--{key} must be >= 1, got {getattr(args, key)}')
    if args.samples < 10 * args.components:
        raise UserError(f'--samples {args.samples} is too few for {args.components} components (>= 10 each)')
    return args


def sample_poses(n, seed):
    from tool.make_data.synthetic.poses import sample_body_pose
    rng = np.random.default_rng(seed)
    return np.stack([sample_body_pose(rng)[1][:PRIOR_DIMS] for _ in range(n)])


def fit_gmm(x, k, iters, seed, reg=1e-4):
    """EM for a full-covariance Gaussian mixture: (log weights [k], means [k,D], covariances [k,D,D]). reg (rad^2)
    is added to each covariance's diagonal: joints the generator barely moves (toes) stay invertible."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    # k-means++ seeding
    means = [x[rng.integers(n)]]
    for _ in range(k - 1):
        d2 = np.min([((x - m) ** 2).sum(1) for m in means], 0)
        means.append(x[rng.choice(n, p=d2 / d2.sum())])
    means = np.stack(means)
    covs = np.repeat((np.cov(x.T) + reg * np.eye(d))[None], k, 0)
    logw = np.full(k, -np.log(k))
    for _ in range(iters):
        ll = np.stack([logw[j] + gaussian_logpdf(x, means[j], covs[j]) for j in range(k)], 1)   # [n,k]
        resp = np.exp(ll - ll.max(1, keepdims=True))
        resp /= resp.sum(1, keepdims=True)
        nk = resp.sum(0) + 1e-10
        logw = np.log(nk / n)
        means = (resp.T @ x) / nk[:, None]
        for j in range(k):
            c = x - means[j]
            covs[j] = (resp[:, j, None] * c).T @ c / nk[j] + reg * np.eye(d)
    return logw, means, covs


def gaussian_logpdf(x, mean, cov):
    L = np.linalg.cholesky(cov)
    z = np.linalg.solve(L, (x - mean).T)
    return -0.5 * (z ** 2).sum(0) - np.log(np.diag(L)).sum() - 0.5 * len(mean) * np.log(2 * np.pi)


def main(argv=None):
    args = parse_args(argv)
    x = sample_poses(args.samples, args.seed)
    logw, means, covs = fit_gmm(x, args.components, args.iters, args.seed)
    about = (f'GMM of {args.components} full-covariance Gaussians over the axis-angle of the 21 SMPL body joints, '
             f'fitted by tool/make_data/fit_pose_prior.py to {args.samples} poses of '
             f'tool/make_data/synthetic/poses.py (seed {args.seed})')
    out = Path(args.out)
    try:
        atomic_np_save(out, log_weights=logw, means=means, covariances=covs, about=np.array(about))
    except OSError as e:
        raise UserError(f'cannot write {out}: {e.strerror or e}') from e
    mean_ll = float(np.mean(np.logaddexp.reduce(
        np.stack([logw[j] + gaussian_logpdf(x, means[j], covs[j]) for j in range(len(logw))], 1), axis=1)))
    print(f'{out}: {args.components} components over {x.shape[1]} dims, mean log-likelihood {mean_ll:.1f} on '
          f'{args.samples} generator poses')
    return 0


if __name__ == '__main__':
    run_cli(main)
