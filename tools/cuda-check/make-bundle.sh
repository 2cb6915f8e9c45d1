#!/usr/bin/env bash
# Builds .cuda/, the folder that the device machine's CUDA check (tools/cuda-check/run.sh) needs:
# a jlink Java runtime, the check's jars (no pytorch-native-cpu: the device's own torch libraries
# are used), JNI headers, and DJL v0.36.0's JNI sources for building libdjl_torch.so against the
# device's torch when DJL's prebuilt one (for libtorch 2.7.1) does not load there.
#
# Usage, from the repository root (add /.cuda/ to .git/info/exclude once):
#   bash tools/cuda-check/make-bundle.sh /path/to/a/clone/of/deepjavalibrary/djl
# then, with a device machine: run(command='bash .cuda/run.sh', carry=['.cuda'], timeout_s=420).
set -euo pipefail
DJL_GIT=${1:?"usage: make-bundle.sh <a git clone (or mirror) of deepjavalibrary/djl holding tag v0.36.0>"}
ROOT=$(pwd)
C="$ROOT/.cuda"
rm -rf "$C"
mkdir -p "$C/lib" "$C/include/linux" "$C/native"

mvn -q -B -pl examples -am package dependency:copy-dependencies -DskipTests \
    -Dcheckstyle.skip -Dspotless.check.skip -DincludeScope=runtime \
    -DexcludeArtifactIds=pytorch-native-cpu,mxnet-engine,mxnet-native-mkl,xchart \
    -DoutputDirectory="$C/lib"
jar cf "$C/lib/secorder-examples.jar" -C examples/target/classes .

JDK=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
cp "$JDK/include/jni.h" "$C/include/"
cp "$JDK/include/linux/jni_md.h" "$C/include/linux/"
jlink --add-modules java.base,java.logging,java.management,jdk.unsupported \
    --strip-debug --no-header-files --no-man-pages --compress=2 --output "$C/jre"
tar -C "$C" -cJf "$C/jre.tar.xz" jre
rm -rf "$C/jre"

# DJL's JNI sources at the tag of the DJL version in use, and the JNI header generated from
# PyTorchLibrary.java of the same tag
git -C "$DJL_GIT" archive v0.36.0 engines/pytorch/pytorch-native api/src/main/native \
    engines/pytorch/pytorch-engine/src/main/java/ai/djl/pytorch/jni/PyTorchLibrary.java |
    tar -x -C "$C/native"
mkdir -p "$C/native/engines/pytorch/pytorch-native/build/include" "$C/native/classes"
javac -h "$C/native/engines/pytorch/pytorch-native/build/include" -d "$C/native/classes" \
    -cp "$C/lib/*" \
    "$C/native/engines/pytorch/pytorch-engine/src/main/java/ai/djl/pytorch/jni/PyTorchLibrary.java" ||
    echo "javac -h failed: the fallback build of the JNI will not have its header"
rm -rf "$C/native/classes" "$C/native/engines/pytorch/pytorch-engine"
echo "DJL v0.36.0 engines/pytorch/pytorch-native + api/src/main/native" >"$C/native/SOURCE.txt"
cp tools/cuda-check/run.sh "$C/run.sh"
du -sh "$C"
