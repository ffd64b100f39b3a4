#!/usr/bin/env bash
# The functions curl bans, banned here too, outside tests/: sprintf, strcpy,
# strcat, strtok, atoi/atol, sscanf, gets, vsprintf.  Use snprintf, memcpy
# with a checked length, strtoull with checks, and the parsers in s3d/.
cd "$(dirname "$0")/../.."
pat='\b(sprintf|vsprintf|strcpy|strcat|strncat|strtok|atoi|atol|atoll|sscanf|gets)[[:space:]]*\('
hits=$(grep -nE "$pat" --include='*.c' --include='*.h' -r libstore storectl s3d fusefs bench 2>/dev/null \
       | grep -vE '^[^:]+:[0-9]+:\s*(//|/?\*)' | grep -v '/tests/')
if [ -n "$hits" ]; then
  echo "FAIL banned_functions:"
  echo "$hits"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "ok banned_functions"
echo "1 passed, 0 failed"
