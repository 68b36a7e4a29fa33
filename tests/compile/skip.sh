#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# skip.sh MESSAGE - report a test that cannot run here: exit 77 (CTest
# SKIP_RETURN_CODE), or fail when IOMEM_REQUIRE_ALL=1.
if [ "${IOMEM_REQUIRE_ALL:-0}" = 1 ]; then
	echo "FAIL: $* (IOMEM_REQUIRE_ALL=1: a skip is a failure)"
	exit 1
fi
echo "SKIP: $*"
exit 77
