package org.secorder.engine.pytorch;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes a TorchScript archive that {@code torch::jit::load} compiles from source.
 *
 * <p>The archive holds only what the loader needs for a module without tensors: the TorchScript
 * source, a protocol-2 pickle of the module object, an empty constants table and a format version.
 */
final class TorchScriptArchive {

    private static final String ROOT = "secorder/";
    private static final String FORMAT_VERSION = "3\n";
    private static final int PICKLE_PROTO = 0x80;
    private static final int PICKLE_NEWOBJ = 0x81;
    private static final int PICKLE_NEWFALSE = 0x89;

    private TorchScriptArchive() {}

    /**
     * Returns the bytes of an archive for a module class defined in {@code __torch__}.
     *
     * @param className the name of the module class the source defines
     * @param source the TorchScript source of {@code code/__torch__.py}
     * @return the archive's bytes
     */
    static byte[] of(String className, String source) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
            store(zip, "data.pkl", modulePickle(className));
            store(zip, "code/__torch__.py", source.getBytes(StandardCharsets.UTF_8));
            store(zip, "constants.pkl", new byte[] {(byte) PICKLE_PROTO, 2, ')', '.'});
            store(zip, "version", FORMAT_VERSION.getBytes(StandardCharsets.US_ASCII));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** A pickle of {@code __torch__.className()} whose state is {@code {"training": False}}. */
    private static byte[] modulePickle(String className) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(PICKLE_PROTO);
        out.write(2);
        out.writeBytes(("c__torch__\n" + className + "\n").getBytes(StandardCharsets.US_ASCII));
        out.write(')');
        out.write(PICKLE_NEWOBJ);
        out.write('}');
        byte[] key = "training".getBytes(StandardCharsets.US_ASCII);
        out.write('X');
        out.writeBytes(new byte[] {(byte) key.length, 0, 0, 0});
        out.writeBytes(key);
        out.write(PICKLE_NEWFALSE);
        out.write('s');
        out.write('b');
        out.write('.');
        return out.toByteArray();
    }

    private static void store(ZipOutputStream zip, String name, byte[] data) throws IOException {
        ZipEntry entry = new ZipEntry(ROOT + name);
        entry.setMethod(ZipEntry.STORED);
        entry.setSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        entry.setCrc(crc.getValue());
        zip.putNextEntry(entry);
        zip.write(data);
        zip.closeEntry();
    }
}
