"""The reports' charts (quickstart, ablation, bench_learning): training curves, grouped and horizontal bar charts,
drawn with matplotlib's Agg backend and written as PNG files atomically. Colours follow common/vis.py's PALETTE, so a
model has the same colour in the montages and the charts."""
import io

import numpy as np

from common.io import atomic_write_bytes
from common.vis import PALETTE


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, path, dpi=110):
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=dpi, bbox_inches='tight')
    atomic_write_bytes(path, buf.getvalue())
    return path


def _mpl_color(i):
    r, g, b = PALETTE[i % len(PALETTE)]
    return (r / 255, g / 255, b / 255)


def plot_curves(panels, path, xlabel='iteration', title=None, colors=None):
    """Line plots side by side: panels = {panel title: {series label: (x, y)}} (series of one label share a colour
    across panels; `colors` maps labels to palette indices). Written as a PNG."""
    plt = _pyplot()
    panels = {k: v for k, v in panels.items() if v}
    labels = list(dict.fromkeys(lab for series in panels.values() for lab in series))
    colors = colors or {lab: i for i, lab in enumerate(labels)}
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.4), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items()):
        for lab, (x, y) in series.items():
            ax.plot(x, y, label=lab, color=_mpl_color(colors.get(lab, 0)), lw=1.4,
                    marker='o' if len(x) <= 12 else None, ms=3)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        # one panel: the legend beside the axes, where it hides no curve
        ax.legend(fontsize=7, **({'loc': 'upper left', 'bbox_to_anchor': (1.01, 1)} if n == 1 else {}))
    if not panels:
        axes[0][0].text(0.5, 0.5, 'no curves recorded', ha='center', va='center')
    if title:
        fig.suptitle(title, fontsize=11)
    _save_figure(fig, path)
    plt.close(fig)
    return path


def grouped_bar_chart(groups, series, path, ylabel='', title=None, panels=None, colors=None):
    """Grouped bars: groups = x labels; series = {label: (means [G], stds [G] or None)} per panel, or
    panels = {panel title: series} for several panels side by side. Error bars show the spread."""
    plt = _pyplot()
    panels = panels or {ylabel: series}
    labels = list(dict.fromkeys(lab for s in panels.values() for lab in s))
    colors = colors or {lab: i for i, lab in enumerate(labels)}
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.8, 1.1 * len(groups) * max(1, len(labels)) / 2.2)
                                                       * len(panels), 3.6), squeeze=False)
    width = 0.8 / max(1, len(labels))
    for ax, (name, ser) in zip(axes[0], panels.items()):
        for k, lab in enumerate(labels):
            if lab not in ser:
                continue
            means, stds = ser[lab]
            xs = np.arange(len(groups)) + (k - (len(labels) - 1) / 2) * width
            means = np.asarray(means, float)
            ax.bar(xs, np.nan_to_num(means), width * 0.95, yerr=None if stds is None else np.nan_to_num(stds),
                   capsize=2, label=lab, color=_mpl_color(colors[lab]))
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels(groups, fontsize=8)
        ax.set_ylabel(name)
        ax.grid(axis='y', alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc='upper center', bbox_to_anchor=(0.5, 0.0), ncol=max(1, len(names)), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    _save_figure(fig, path)
    plt.close(fig)
    return path


def hbar_chart(labels, panels, path, title=None, highlight=()):
    """Horizontal bars, one per label, in panels side by side: panels = {x-axis title: (means, stds or None,
    references {name: value})}; references are labelled dashed vertical lines; labels in `highlight` get the
    second palette colour."""
    plt = _pyplot()
    n = len(labels)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 2.5, 1.0 + 0.34 * max(n, 2)),
                             squeeze=False, sharey=True)
    ys = np.arange(n)[::-1]
    cols = [_mpl_color(1 if lab in highlight else 0) for lab in labels]
    for ax, (name, (means, stds, refs)) in zip(axes[0], panels.items()):
        ax.barh(ys, np.nan_to_num(np.asarray(means, float)), height=0.7, color=cols, capsize=2,
                xerr=None if stds is None else np.nan_to_num(np.asarray(stds, float)))
        for k, (ref, value) in enumerate((refs or {}).items()):
            if value is not None and np.isfinite(value):
                ax.axvline(value, color=_mpl_color(2 + k), ls='--', lw=1.2, label=f'{ref} {value:.1f}')
        if refs:
            ax.legend(fontsize=7, loc='lower right')
        ax.set_xlabel(name)
        ax.grid(axis='x', alpha=0.3)
    axes[0][0].set_yticks(ys)
    axes[0][0].set_yticklabels(labels, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    _save_figure(fig, path)
    plt.close(fig)
    return path
