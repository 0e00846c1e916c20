"""Real-video checks on ../shared/data/video_mini (Kinetics and MSVD clips).

    python benchmarks/video_real.py [--model CAPTIONER_BUNDLE]

1. Kinetics (two classes, folder layout): a clip model trained on 5 clips tags the 6th;
   leave-one-out accuracy over the 6 clips.
2. MSVD: the default tagger (no video training) on each whole clip: its clip captions'
   BLEU/CIDEr-D against the 12-20 human captions, both ways of captioning a clip side by side
   (all frames, word distributions averaged; the most representative frame), and how many of
   its top-5 tags appear among the words of those captions.
"""

from __future__ import annotations

import sys

import numpy as np

from real_clips import VIDEO, default_tagger, msvd_captions


def main() -> int:
    tagger = default_tagger(__doc__.splitlines()[0])
    if tagger is None:
        return 0
    from captioner import TagOptions
    from captioner.data.text import tokenize
    from captioner.data.video import probe
    from captioner.data.video_labels import read_video_labels
    from captioner.evaluation.captions import evaluate_captions
    from captioner.video.config import CLIP_CAPTIONS, ClipTrainConfig
    from captioner.video.tagger import clip_features
    from captioner.video.train import fit_clip_model, predict_tags, tag_matrix

    records = read_video_labels(VIDEO / "kinetics")
    names = sorted({t for r in records for t in r.tags})
    clips = [clip_features(r.path, tagger.encoder, fps=2.0) for r in records]
    labels = tag_matrix([r.tags for r in records], names)
    config = ClipTrainConfig(units=32, epochs=40, seed=0)
    hits = []
    for i in range(len(records)):
        keep = [j for j in range(len(records)) if j != i]
        model = fit_clip_model([clips[j] for j in keep], labels[keep], None, config)
        hits.append(int(predict_tags(model, [clips[i]], config.max_frames)[0].argmax() == labels[i].argmax()))
    print(f"Kinetics leave-one-out ({', '.join(names)}): {sum(hits)}/{len(hits)} correct")

    msvd = msvd_captions()
    hyps, refs, overlap = {mode: {} for mode in CLIP_CAPTIONS}, {}, []
    for path in sorted((VIDEO / "msvd" / "video").iterdir()):
        length = probe(path).duration
        for mode in CLIP_CAPTIONS:
            options = TagOptions(clip_seconds=length + 1, fps=1.0, top_k=5, clip_caption=mode)
            (row,) = tagger.tag_video(path, options)
            hyps[mode][path.name] = row["caption"]
        refs[path.name] = msvd[path.name]
        words = {w for c in msvd[path.name] for w in tokenize(c)}
        found = [t["tag"] for t in row["tags"] if set(tokenize(t["tag"])) & words]
        overlap.append(len(found))
        print(f"{path.name}: " + " | ".join(f"{m}: '{hyps[m][path.name]}'" for m in CLIP_CAPTIONS)
              + f" | tags {[t['tag'] for t in row['tags']]} | in references: {found}")
    for mode in CLIP_CAPTIONS:
        scores = evaluate_captions(hyps[mode], refs)
        print(f"MSVD clip captions from {mode}: " + "  ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    print(f"MSVD top-5 tags found among reference words: {sum(overlap)}/{5 * len(overlap)} "
          f"(mean {np.mean(overlap):.1f} per clip)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
