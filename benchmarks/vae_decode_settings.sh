#!/usr/bin/env bash
# The full-VAE decode's session settings, interleaved: each setting once per round, so a change of load hits all alike.
# Usage: benchmarks/vae_decode_settings.sh VAE_DECODER_FOLDER [SIZE] [ROUNDS]   (after: dotnet build src/LocalDiffusion.Cli -c Release)
set -euo pipefail
vae=${1:?a vae_decoder folder, e.g. /tmp/sd15-random/vae_decoder}
size=${2:-512x512}
rounds=${3:-2}
cli=(dotnet "$(dirname "$0")/../src/LocalDiffusion.Cli/bin/Release/net10.0/LocalDiffusion.Cli.dll" bench decode --vae "$vae" --size "$size" --repeats 2)
names=(defaults nchwc-off prepack denormals-as-zero no-spinning one-thread)
settings=(
  ""
  "--session-config optimization.disable_specified_optimizers=NchwcTransformer"
  "--prepack-weights"
  "--session-config session.set_denormal_as_zero=1"
  "--session-config session.intra_op.allow_spinning=0"
  "--threads 1"
)
for round in $(seq 1 "$rounds"); do
  for i in "${!names[@]}"; do
    echo "=== round $round ${names[$i]} (load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%T) UTC)"
    # shellcheck disable=SC2086 # each setting is several words
    COLUMNS=200 "${cli[@]}" ${settings[$i]} | tail -4
  done
done
