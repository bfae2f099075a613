#!/usr/bin/env bash
# The seed workflow with the `vocal` CLI: from a folder of songs to "sung like this", a playlist and a
# page to listen to. Run it in the folder that holds songs/ (laid out like examples/songs/):
#
#     bash walkthrough.sh            # or: bash walkthrough.sh path/to/songs
#
# The project (vocal.yaml, catalog.csv, models, index, report/) is created in the current folder. Every
# step can be rerun: finished work is skipped. Add --help to any command to see what it can do.
set -euo pipefail
SONGS=${1:-./songs}

# 1. Decode the analysed window (0:30-2:30) of every song, remove the accompaniment, make log-mels.
#    Creates vocal.yaml (every setting, with its unit) on the first run. A file that cannot be used is
#    listed with its reason (and in catalog.csv); the others go on, so a failure does not stop us here.
vocal prepare "$SONGS" || echo "some files could not be prepared (see the table above); going on without them"

# 2. The same number of songs per singer, split into train / val / test within each singer.
vocal balance

# 3-4. Train the timbre encoder and the melody autoencoder, on the GPU when this machine has one.
#      The second trainer ends by embedding every song (embeddings/).
GPU=""
if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then GPU="--gpu"; fi
vocal train-contrastive $GPU
vocal train-tcae $GPU

# 5. The Annoy index over every song's timbre and melody vectors.
vocal index

# 6. Songs sung like one of yours (any audio file works, in the library or not: a library song's own
#    file is answered from the index and left out of its list), and the same list as a playlist any
#    music player opens.
QUERY=$(find "$SONGS" -type f ! -name '*.csv' ! -name '*.md' ! -name '.*' | sort | head -n 1)
vocal recommend "$QUERY" -k 5 --m3u sung-like-this.m3u8

# 7. The project as a page to listen to: the map, every song's clips and matches, the training curves.
vocal report
echo "open $(pwd)/report/index.html in a browser"
