import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.security.Permission;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * dicom-hub's PixelMed host: runs PixelMed command-line mains in one long-lived JVM, so a request
 * costs the main's own work instead of a JVM start-up (~300 ms).
 *
 * <p>One NDJSON request per stdin line, {"class": "com.pixelmed.X", "args": [...], "stdin": "..."},
 * one answer per stdout line, {"returncode": n, "stdout": "...", "stderr": "..."} — what a one-shot
 * {@code java com.pixelmed.X args} would have exited with and printed. Only classes under
 * com.pixelmed. run (nothing else can be asked for). System.out, System.err (and with it the
 * java.util.logging console, which holds System.err from its creation) and System.in are switched
 * per request; System.exit is trapped by a SecurityManager (JDK 17: -Djava.security.manager=allow)
 * and becomes the return code, and nothing the main prints after it is kept, as in a real exit.
 * A request that leaves non-daemon threads running answers "restart": true, and the client starts
 * a fresh JVM: such threads would otherwise print into later answers.
 */
@SuppressWarnings("removal")  // SecurityManager: the one way to trap System.exit on JDK 17
public final class PixelmedHost {
    private static final String PREFIX = "com.pixelmed.";
    private static final Pattern CLASS_NAME = Pattern.compile("com\\.pixelmed(\\.[A-Za-z_][A-Za-z0-9_$]*)+");

    /** Where System.out / System.err write now: the current request's buffer, or nothing. */
    static final class Switch extends OutputStream {
        private volatile OutputStream target = OutputStream.nullOutputStream();

        void to(OutputStream next) { target = next; }

        @Override public void write(int b) throws java.io.IOException { target.write(b); }

        @Override public void write(byte[] b, int off, int len) throws java.io.IOException { target.write(b, off, len); }
    }

    /** System.exit inside a main: unwinds the main instead of ending the JVM. */
    static final class ExitTrap extends SecurityException {
        private static final long serialVersionUID = 1L;

        ExitTrap(int status) { super("System.exit(" + status + ") trapped by PixelmedHost"); }
    }

    /** Allows everything but System.exit while a request runs (the first exit status wins). */
    static final class NoExit extends SecurityManager {
        volatile boolean armed;
        volatile Integer status;

        @Override public void checkPermission(Permission perm) { }

        @Override public void checkPermission(Permission perm, Object context) { }

        @Override public void checkExit(int code) {
            if (!armed) return;
            synchronized (this) {
                if (status == null) {
                    status = code;
                    OUT.to(OutputStream.nullOutputStream());  // a real exit ends all printing here
                    ERR.to(OutputStream.nullOutputStream());
                }
            }
            throw new ExitTrap(code);
        }
    }

    static final Switch OUT = new Switch();
    static final Switch ERR = new Switch();

    public static void main(String[] argv) throws Exception {
        PrintStream answers = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        BufferedReader requests = new BufferedReader(new InputStreamReader(new FileInputStream(FileDescriptor.in), StandardCharsets.UTF_8));
        Charset charset = Charset.defaultCharset();
        System.setOut(new PrintStream(OUT, true, charset.name()));
        System.setErr(new PrintStream(ERR, true, charset.name()));
        NoExit guard = new NoExit();
        System.setSecurityManager(guard);
        String line;
        while ((line = requests.readLine()) != null) {
            if (line.isBlank()) continue;
            Map<String, Object> answer;
            try {
                answer = serve(Json.object(line), guard, charset);
            } catch (IllegalArgumentException refused) {
                answer = new LinkedHashMap<>();
                answer.put("returncode", 2);
                answer.put("stdout", "");
                answer.put("stderr", "");
                answer.put("error", refused.getMessage());
            }
            answers.println(Json.write(answer));
        }
        System.exit(0);  // threads a main left behind must not keep the JVM alive
    }

    /** Run one main as `java CLASS args` would, with stdout, stderr and stdin of its own. */
    static Map<String, Object> serve(Map<String, Object> request, NoExit guard, Charset charset) {
        String name = Json.string(request, "class");
        if (name == null || !name.startsWith(PREFIX) || !CLASS_NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("refused: only com.pixelmed.* classes run here, not " + name);
        }
        List<String> args = Json.strings(request, "args");
        String stdin = Json.string(request, "stdin");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Set<Thread> before = new HashSet<>(Thread.getAllStackTraces().keySet());
        InputStream in = new ByteArrayInputStream(stdin == null ? new byte[0] : stdin.getBytes(charset));
        System.setIn(in);
        OUT.to(out);
        ERR.to(err);
        guard.status = null;
        guard.armed = true;
        int returncode = 0;
        try {
            Method main = mainOf(name);
            if (main == null) {
                System.err.println("Error: Could not find or load main class " + name);
                returncode = 1;
            } else {
                main.invoke(null, (Object) args.toArray(new String[0]));
            }
        } catch (InvocationTargetException thrown) {
            Throwable cause = thrown.getCause();
            if (guard.status == null && !(cause instanceof ExitTrap)) {
                System.err.print("Exception in thread \"main\" ");
                cause.printStackTrace(System.err);
                returncode = 1;
            }
        } catch (ReflectiveOperationException | LinkageError failed) {
            System.err.println("Error: Could not run main class " + name + ": " + failed);
            returncode = 1;
        }
        boolean leftThreads = false;
        if (guard.status == null) leftThreads = !joinNewThreads(before);  // the JVM waits for them too
        else leftThreads = anyNewThreadAlive(before);
        guard.armed = false;
        System.out.flush();
        System.err.flush();
        OUT.to(OutputStream.nullOutputStream());
        ERR.to(OutputStream.nullOutputStream());
        Map<String, Object> answer = new LinkedHashMap<>();
        answer.put("returncode", guard.status != null ? guard.status : returncode);
        answer.put("stdout", new String(out.toByteArray(), charset));
        answer.put("stderr", new String(err.toByteArray(), charset));
        if (leftThreads) answer.put("restart", true);
        return answer;
    }

    static Method mainOf(String name) throws ReflectiveOperationException {
        Class<?> type;
        try {
            type = Class.forName(name, true, PixelmedHost.class.getClassLoader());
        } catch (ClassNotFoundException missing) {
            return null;
        }
        Method main = type.getMethod("main", String[].class);
        if (!Modifier.isStatic(main.getModifiers())) return null;
        return main;
    }

    /** Wait for the non-daemon threads the main started (false: one ended with an exit). */
    static boolean joinNewThreads(Set<Thread> before) {
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (before.contains(thread) || thread.isDaemon()) continue;
            try {
                thread.join();
            } catch (InterruptedException stop) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return !anyNewThreadAlive(before);
    }

    static boolean anyNewThreadAlive(Set<Thread> before) {
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (!before.contains(thread) && !thread.isDaemon() && thread.isAlive()) return true;
        }
        return false;
    }

    /** The little JSON the protocol needs: objects of strings, string arrays, numbers and booleans. */
    static final class Json {
        private final String text;
        private int at;

        private Json(String text) { this.text = text; }

        @SuppressWarnings("unchecked")
        static Map<String, Object> object(String text) {
            Json parser = new Json(text);
            Object value = parser.value();
            parser.space();
            if (!(value instanceof Map) || parser.at != text.length()) throw new IllegalArgumentException("refused: a request is one JSON object per line");
            return (Map<String, Object>) value;
        }

        static String string(Map<String, Object> object, String key) {
            Object value = object.get(key);
            if (value != null && !(value instanceof String)) throw new IllegalArgumentException("refused: \"" + key + "\" must be a string");
            return (String) value;
        }

        static List<String> strings(Map<String, Object> object, String key) {
            Object value = object.get(key);
            List<String> result = new ArrayList<>();
            if (value == null) return result;
            if (!(value instanceof List)) throw new IllegalArgumentException("refused: \"" + key + "\" must be an array of strings");
            for (Object item : (List<?>) value) {
                if (!(item instanceof String)) throw new IllegalArgumentException("refused: \"" + key + "\" must be an array of strings");
                result.add((String) item);
            }
            return result;
        }

        private Object value() {
            space();
            if (at >= text.length()) throw bad();
            char c = text.charAt(at);
            if (c == '{') {
                Map<String, Object> map = new LinkedHashMap<>();
                at++;
                space();
                if (peek('}')) return map;
                do {
                    space();
                    if (at >= text.length() || text.charAt(at) != '"') throw bad();
                    String key = quoted();
                    space();
                    expect(':');
                    map.put(key, value());
                    space();
                } while (take(','));
                expect('}');
                return map;
            }
            if (c == '[') {
                List<Object> list = new ArrayList<>();
                at++;
                space();
                if (peek(']')) return list;
                do {
                    list.add(value());
                    space();
                } while (take(','));
                expect(']');
                return list;
            }
            if (c == '"') return quoted();
            for (String word : new String[] {"null", "true", "false"}) {
                if (text.startsWith(word, at)) {
                    at += word.length();
                    return word.equals("null") ? null : Boolean.valueOf(word);
                }
            }
            int start = at;
            while (at < text.length() && "+-0123456789.eE".indexOf(text.charAt(at)) >= 0) at++;
            if (start == at) throw bad();
            return Double.valueOf(text.substring(start, at));
        }

        private String quoted() {
            StringBuilder out = new StringBuilder();
            at++;
            while (at < text.length()) {
                char c = text.charAt(at++);
                if (c == '"') return out.toString();
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                if (at >= text.length()) break;
                char e = text.charAt(at++);
                switch (e) {
                    case 'n': out.append('\n'); break;
                    case 't': out.append('\t'); break;
                    case 'r': out.append('\r'); break;
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'u':
                        if (at + 4 > text.length()) throw bad();
                        out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
                        at += 4;
                        break;
                    default: out.append(e);
                }
            }
            throw bad();
        }

        private void space() { while (at < text.length() && Character.isWhitespace(text.charAt(at))) at++; }

        private boolean peek(char c) {
            if (at < text.length() && text.charAt(at) == c) {
                at++;
                return true;
            }
            return false;
        }

        private boolean take(char c) { space(); return peek(c); }

        private void expect(char c) { if (!take(c)) throw bad(); }

        private IllegalArgumentException bad() { return new IllegalArgumentException("refused: malformed JSON request at character " + at); }

        static String write(Map<String, Object> object) {
            StringBuilder out = new StringBuilder("{");
            for (Map.Entry<String, Object> entry : object.entrySet()) {
                if (out.length() > 1) out.append(',');
                quote(out, entry.getKey());
                out.append(':');
                Object value = entry.getValue();
                if (value instanceof String) quote(out, (String) value);
                else out.append(value);
            }
            return out.append('}').toString();
        }

        /** A JSON string, ASCII only (anything else as \\uXXXX), so an answer is always one line. */
        private static void quote(StringBuilder out, String value) {
            out.append('"');
            for (int i = 0; i < value.length(); i++) {
                char c = value.charAt(i);
                if (c == '"' || c == '\\') out.append('\\').append(c);
                else if (c >= 0x20 && c < 0x7f) out.append(c);
                else out.append(String.format("\\u%04x", (int) c));
            }
            out.append('"');
        }
    }
}
