#!/usr/bin/env bash
# One-shot CUDA check of Secorder (org.secorder.examples.CudaCheck) on the device machine.
# Run from the repository root:  OUT=/some/dir bash .cuda/run.sh   (log: $OUT/log.txt)
# DJL's PyTorch engine uses the device's torch libraries (PYTORCH_LIBRARY_PATH) with DJL 0.36.0's
# prebuilt cu128 JNI (built for libtorch 2.7.1); if that JNI does not load, crashes, or the check
# fails, it builds libdjl_torch.so from DJL v0.36.0's sources (.cuda/native) against the device's
# torch (if there is time left) and reruns the check with it.
# Overrides (for a local CPU test): USE_JRE=1, DEVICE (gpu0), TORCH_LIB, PT_VERSION, PT_FLAVOR,
# JNI_FLAVOR (cu128), JNI_FILE (a libdjl_torch.so to try first, e.g. an earlier run's),
# JNI_BUILD (auto | force | never), CONFIGURE_ONLY=1, TORCH_CMAKE_PREFIX,
# WORK (/tmp/cudacheck), MODELS (mlp,cnn,lenet,resnet18), BUILD_BEFORE_S (150), DEADLINE_S (400).
set -u -o pipefail
ROOT=$(pwd)
C="$ROOT/.cuda"
OUT=${OUT:-$ROOT/.cuda-out}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
WORK=${WORK:-/tmp/cudacheck}
mkdir -p "$WORK"
T0=$(date +%s)
say() { echo "[run.sh +$(($(date +%s) - T0))s] $*"; }
left() { # $1 seconds wanted: at most what is left before DEADLINE_S (400 s after the start)
    local l=$((${DEADLINE_S:-400} - ($(date +%s) - T0) - 5))
    [ "$l" -gt "$1" ] && l=$1
    [ "$l" -lt 10 ] && l=10
    echo "$l"
}

# Places a JNI library where DJL's LibUtils looks right after PYTORCH_LIBRARY_PATH's folder:
# $DJL_CACHE_DIR/pytorch/<PYTORCH_VERSION>-<PYTORCH_FLAVOR>-linux-x86_64/0.36.0-libdjl_torch.so
place_jni() { # $1 cache dir, $2 library
    local d="$1/pytorch/$PT_VERSION-$PT_FLAVOR-linux-x86_64"
    rm -rf "$1" "$WORK/probe.txt" "$WORK/check.txt"
    mkdir -p "$d"
    cp "$2" "$d/0.36.0-libdjl_torch.so"
}

run_java() { # $1 cache dir, $2 timeout, $3 LD_BIND_NOW value, rest: CudaCheck's arguments
    local cache="$1" limit="$2" bind="$3"
    shift 3
    limit=$(left "$limit")
    say "java CudaCheck $* (DJL_CACHE_DIR=$cache LD_BIND_NOW=$bind)"
    LD_BIND_NOW="$bind" LD_LIBRARY_PATH="$LIBPATH" PYTORCH_LIBRARY_PATH="$TORCH_LIB" \
        PYTORCH_VERSION="$PT_VERSION" PYTORCH_FLAVOR="$PT_FLAVOR" \
        PYTORCH_LIBRARY_EXCLUSION="$EXCLUDE" DJL_CACHE_DIR="$cache" ENGINE_CACHE_DIR="$cache" \
        timeout -k 10 "$limit" "$JAVA" -Xmx16g -Dai.djl.offline=true \
        -Djna.library.path="$LIBPATH" -Dai.djl.default_engine=PyTorch \
        -Dorg.slf4j.simpleLogger.log.ai.djl.pytorch.jni.LibUtils=debug \
        -cp "$CP" org.secorder.examples.CudaCheck "$@" 2>&1
}

check_with() { # $1 cache dir, $2 LD_BIND_NOW value: the probe, then the full check; sets RC
    if run_java "$1" 150 "$2" "$DEVICE" --probe | tee -a "$WORK/java.txt" "$WORK/probe.txt" \
        && grep -q "ENGINE OK" "$WORK/probe.txt"; then
        say "probe passed"
    else
        say "probe FAILED (no ENGINE OK)"
        RC=90
        return
    fi
    local args=("$DEVICE")
    [ -n "${MODELS:-}" ] && args+=("--models=$MODELS")
    run_java "$1" 300 "$2" "${args[@]}" | tee -a "$WORK/java.txt" "$WORK/check.txt"
    RC=$?
    say "CudaCheck exit status $RC"
}

link_objects() { # links $WORK/build/libdjl_torch.so from object files
    g++ -shared -o "$WORK/build/libdjl_torch.so" "$@" -L"$TORCH_LIB" -ltorch -ltorch_cpu \
        -ltorch_cuda -lc10 -lc10_cuda -Wl,-rpath,'$ORIGIN'
}

build_direct() { # g++ without CMake, used when CMake's configure step failed
    local src="$C/native/engines/pytorch/pytorch-native" b="$WORK/direct" tdir abi cinc inc
    tdir=$(dirname "$TORCH_LIB")
    abi=$($PY -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
    cinc="$tdir/include"
    local nvcc_inc=/nonexistent
    command -v nvcc >/dev/null && nvcc_inc=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")/include
    for inc in /usr/local/cuda/include "$nvcc_inc" "$TORCH_LIB"/../../nvidia/*/include \
        "$TORCH_LIB"/../../nvidia/*/*/include; do
        [ -f "$inc/cuda_runtime_api.h" ] && cinc="$cinc -I$inc"
    done
    say "direct g++ build (abi $abi, include $cinc)"
    mkdir -p "$b" "$WORK/build"
    local flags="-O2 -w -fPIC -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=$abi -DUSE_CUDA -I$tdir/include \
        -I$tdir/include/torch/csrc/api/include -I$cinc -I$C/include -I$C/include/linux \
        -I$src/build/include -I$C/native/api/src/main/native"
    ls "$src"/src/main/native/*.cc | xargs -P 16 -I{} sh -c \
        "g++ $flags -c {} -o $b/\$(basename {} .cc).o || echo COMPILE-FAILED {}" | tee "$b/compile.txt"
    grep -q COMPILE-FAILED "$b/compile.txt" && return 1
    link_objects "$b"/*.o
}

build_jni() { # builds $WORK/build/libdjl_torch.so against the device's torch
    local src="$C/native/engines/pytorch/pytorch-native" b="$WORK/build" prefix jh
    cat "$C/native/SOURCE.txt"
    prefix=${TORCH_CMAKE_PREFIX:-$($PY -c 'import torch;print(torch.utils.cmake_prefix_path)')}
    # a JAVA_HOME for FindJNI: the carried headers and the runtime's libjvm.so
    jh="$WORK/jnihome"
    mkdir -p "$jh/lib/server"
    cp -r "$C/include" "$jh/"
    ln -sf "$(dirname "$(readlink -f "$JAVA")")/../lib/server/libjvm.so" "$jh/lib/server/libjvm.so"
    local gen=() cuda=() keep=-k
    command -v ninja >/dev/null && gen=(-G Ninja) && keep="-k 0"
    [ "$PT_FLAVOR" != cpu ] && cuda=(-DUSE_CUDA=1)
    rm -rf "$b"
    mkdir -p "$b"
    say "cmake configure (prefix $prefix)"
    if ! JAVA_HOME="$jh" cmake -S "$src" -B "$b" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$prefix" "${cuda[@]}" -DJAVA_HOME="$jh" \
        -DJAVA_INCLUDE_PATH="$jh/include" -DJAVA_INCLUDE_PATH2="$jh/include/linux" \
        -DJAVA_JVM_LIBRARY="$jh/lib/server/libjvm.so" -DJAVA_AWT_LIBRARY=NotNeeded \
        -DJAVA_AWT_INCLUDE_PATH=NotNeeded; then
        say "cmake configure FAILED"
        find "$b" -name 'CMake*.log' -exec tail -n 40 {} \;
        [ -n "${CONFIGURE_ONLY:-}" ] && return 1
        build_direct
        return $?
    fi
    [ -n "${CONFIGURE_ONLY:-}" ] && { say "configure only: done"; return 0; }
    say "cmake build"
    # shellcheck disable=SC2086
    if ! timeout "$(left 300)" cmake --build "$b" -- -j 16 $keep; then
        local objects sources
        objects=$(find "$b" -name '*.cc.o' | wc -l)
        sources=$(ls "$src"/src/main/native/*.cc | wc -l)
        say "cmake build FAILED ($objects of $sources objects compiled)"
        [ "$objects" -eq "$sources" ] || return 1
        say "linking the objects directly"
        # shellcheck disable=SC2046
        link_objects $(find "$b" -name '*.cc.o') || return 1
    fi
    ls -la "$b/libdjl_torch.so"
}

main() {
    say "start $(date -u) in $ROOT; OUT=$OUT WORK=$WORK"
    nvidia-smi -L 2>&1 | head -4
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
    PY=python3
    if ! $PY -c 'import torch' 2>/dev/null && [ -x /opt/torch/.venv/bin/python3 ]; then
        PY=/opt/torch/.venv/bin/python3
    fi
    $PY - <<'EOF' 2>&1
try:
    import os, torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)
    print("torch lib dir", os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception as e:
    print("no torch in python:", e)
EOF
    [ -z "${TORCH_LIB:-}" ] && TORCH_LIB=$($PY -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
    [ -z "${PT_VERSION:-}" ] && PT_VERSION=$($PY -c 'import torch;print(torch.__version__.split("+")[0])')
    [ -z "${PT_FLAVOR:-}" ] && PT_FLAVOR=$($PY -c 'import torch;v=torch.version.cuda;print("cu"+v.replace(".","")[:3] if v else "cpu")')
    DEVICE=${DEVICE:-gpu0}
    JNI_FLAVOR=${JNI_FLAVOR:-cu128}
    JNI_BUILD=${JNI_BUILD:-auto}
    say "TORCH_LIB=$TORCH_LIB PT_VERSION=$PT_VERSION PT_FLAVOR=$PT_FLAVOR DEVICE=$DEVICE JNI_BUILD=$JNI_BUILD"
    ls "$TORCH_LIB" 2>&1 | tr '\n' ' '
    echo
    command -v nvcc >/dev/null && nvcc --version | tail -2
    cmake --version 2>&1 | head -1

    # Java: the system's if it is 17 or newer, else the carried jlink runtime
    JAVA=""
    if [ -z "${USE_JRE:-}" ] && command -v java >/dev/null 2>&1; then
        local jv
        jv=$(java -version 2>&1 | head -1 | sed -E 's/.*version "([0-9]+).*/\1/')
        if [ "${jv:-0}" -ge 17 ] 2>/dev/null; then JAVA=$(command -v java); fi
    fi
    if [ -z "$JAVA" ]; then
        [ -x "$WORK/jre/bin/java" ] || tar xJf "$C/jre.tar.xz" -C "$WORK" \
            || $PY -c "import tarfile;tarfile.open('$C/jre.tar.xz').extractall('$WORK')"
        JAVA="$WORK/jre/bin/java"
    fi
    say "java: $JAVA"
    "$JAVA" -version 2>&1

    # the torch libraries and CUDA's, for the JNI's dependencies and for JNA (libcudart: DJL's GPU count)
    LIBPATH="$TORCH_LIB"
    local d
    for d in "$TORCH_LIB"/../../nvidia/*/lib "$TORCH_LIB"/../../nvidia/*/*/lib /usr/local/cuda/lib64; do
        [ -d "$d" ] && LIBPATH="$LIBPATH:$(readlink -f "$d")"
    done
    say "library path: $LIBPATH"
    CP=$(ls "$C"/lib/*.jar | tr '\n' ':')
    EXCLUDE="libjitbackend_test.so,libtorchbind_test.so,libbackend_with_compiler.so,libaoti_custom_ops.so"

    if [ -n "${CONFIGURE_ONLY:-}" ]; then
        build_jni
        return $?
    fi
    rm -f "$WORK/java.txt"
    RC=99
    local used=none
    if [ "$JNI_BUILD" != force ]; then
        local jni="jnilib/linux-x86_64/$JNI_FLAVOR/libdjl_torch.so"
        unzip -o -q -d "$WORK/jni" "$C"/lib/pytorch-jni-*.jar "$jni" \
            || $PY -c "import zipfile,glob;zipfile.ZipFile(glob.glob('$C/lib/pytorch-jni-*.jar')[0]).extract('$jni','$WORK/jni')"
        local file="${JNI_FILE:-$WORK/jni/$jni}"
        place_jni "$WORK/cache-prebuilt" "$file"
        say "=== attempt 1: JNI $file, symbols bound at load ==="
        check_with "$WORK/cache-prebuilt" 1
        used="$file"
    fi
    # 0: all passed; 124, 137: timed out; anything else (no engine, a crash, failures) -> build
    local elapsed=$(($(date +%s) - T0))
    if [ "$JNI_BUILD" = force ] || { [ "$JNI_BUILD" = auto ] && [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] \
        && [ "$RC" -ne 137 ] && [ "$elapsed" -lt "${BUILD_BEFORE_S:-150}" ]; }; then
        say "=== attempt 2: building libdjl_torch.so against torch $PT_VERSION (attempt 1: $RC) ==="
        if build_jni; then
            cp "$WORK/build/libdjl_torch.so" "$OUT/libdjl_torch.so" 2>/dev/null
            place_jni "$WORK/cache-built" "$WORK/build/libdjl_torch.so"
            check_with "$WORK/cache-built" ""
            used="JNI built here against torch $PT_VERSION"
        else
            say "JNI build FAILED"
        fi
    fi
    say "warning lines from Java and libtorch (WARN, [W...): $(grep -cE 'WARN|^\[W' "$WORK/java.txt" 2>/dev/null)"
    grep -hE 'WARN|^\[W' "$WORK/java.txt" 2>/dev/null | cut -c1-200 | sed -E 's/^[0-9]+ //' \
        | sort | uniq -c | sort -rn | head -10
    grep -v "DEBUG" "$WORK/java.txt" > "$OUT/java.txt" 2>/dev/null
    say "summary: JNI used: $used; exit status $RC;" \
        "$(grep -h '^CUDA CHECK:' "$WORK/check.txt" 2>/dev/null | tail -1)"
    return $RC
}

[ -d /usr/local/cuda/bin ] && PATH="$PATH:/usr/local/cuda/bin"
main 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
