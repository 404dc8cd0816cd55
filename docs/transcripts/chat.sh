#!/usr/bin/env bash
# Records docs/transcripts/chat.txt: `archlab chat` with SmolLM2-135M-Instruct (Q4_1 blocks kept)
# driven through tmux, as a person would type: /help, a reply stopped with Ctrl-C, /system, an
# unknown command, a context overflow (--context 200), /save, Ctrl-C at the prompt, /bye.
# Run from the repository root: bash docs/transcripts/chat.sh [python]
set -euo pipefail
PY=${1:-python}
S=archlab-chat-demo
tmux kill-session -t $S 2>/dev/null || true
tmux new -d -s $S -x 120 -y 200 "PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 $PY -m archlab chat smollm2-135m-instruct \
  --quant keep --max-new-tokens 40 --context 200 --seed 0; echo \"[exit status \$?]\"; sleep 60"
prompt() {  # wait until the chat shows its prompt again (the last non-empty line is '>>>')
  for _ in $(seq 600); do
    [ "$(tmux capture-pane -p -t $S | sed '/^$/d' | tail -1)" = ">>>" ] && return; sleep 0.2
  done
}
say() { tmux send-keys -t $S -l "$1"; tmux send-keys -t $S Enter; prompt; }
prompt
say "/help"
say "What is the capital of France?"
tmux send-keys -t $S -l "Write a long story about a dragon."; tmux send-keys -t $S Enter
for _ in $(seq 300); do  # Ctrl-C as soon as the reply has begun
  tmux capture-pane -p -t $S | sed '/^$/d' | tail -1 | grep -q "^>>> Write" || break; sleep 0.05
done
sleep 0.3; tmux send-keys -t $S C-c; prompt
say "/system You are a pirate. Answer in one sentence."
say "Who are you?"
say "Tell me about your ship in detail, every deck and every sail."
say ""
say "/nope"
say "What is your favourite treasure?"
say "Where do you sail next?"
say "/save /tmp/archlab-chat-demo.json"
tmux send-keys -t $S -l "a half-typed line, then Ctrl-C"; sleep 0.5; tmux send-keys -t $S C-c; prompt
tmux send-keys -t $S -l "/bye"; tmux send-keys -t $S Enter
for _ in $(seq 100); do tmux capture-pane -p -t $S | grep -q "exit status" && break; sleep 0.2; done
{ echo "\$ archlab chat smollm2-135m-instruct --quant keep --max-new-tokens 40 --context 200 --seed 0"
  tmux capture-pane -p -J -S - -t $S | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; } > docs/transcripts/chat.txt
tmux kill-session -t $S
