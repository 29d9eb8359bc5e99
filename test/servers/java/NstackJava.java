// The JVM's own networking, as Java servers use it: com.sun.net.httpserver
// (an NIO selector thread handing exchanges to a thread pool) and a
// blocking ServerSocket with a thread per connection and SO_TIMEOUT reads.
// The client side: a blocking echo of 16 MiB written by a second thread
// and checked, Socket.close() of a socket another thread is blocked
// reading (the JVM dup2()s a dead socket over the number to wake it), and a
// read that must time out.
//   java NstackJava.java server ADDR PORT    (HTTP on PORT, echo on PORT+1)
//   java NstackJava.java client ADDR PORT    (exit 0 when every check held)
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.concurrent.Executors;

public class NstackJava {
    static final int BIG = 8 << 20, ECHO = 16 << 20, MB = 1 << 20;

    static byte pattern(long i) { return (byte) (i * 7 + 3); }

    public static void main(String[] a) throws Exception {
        if (a[0].equals("server"))
            server(a[1], Integer.parseInt(a[2]));
        else
            System.exit(client(a[1], Integer.parseInt(a[2])));
    }

    static void server(String addr, int port) throws IOException {
        byte[] big = new byte[BIG];
        for (int i = 0; i < BIG; i++)
            big[i] = pattern(i);
        HttpServer http = HttpServer.create(new InetSocketAddress(addr, port), 64);
        http.createContext("/big", x -> {
            x.sendResponseHeaders(200, big.length);
            try (OutputStream o = x.getResponseBody()) { o.write(big); }
        });
        http.createContext("/", x -> {
            byte[] b = "hello from the JVM\n".getBytes();
            x.sendResponseHeaders(200, b.length);
            try (OutputStream o = x.getResponseBody()) { o.write(b); }
        });
        http.setExecutor(Executors.newFixedThreadPool(4));
        http.start();
        ServerSocket echo = new ServerSocket(port + 1, 50, InetAddress.getByName(addr));
        System.out.println("listening on " + port);
        while (true) {
            Socket c = echo.accept();
            new Thread(() -> echoOne(c)).start();
        }
    }

    static void echoOne(Socket c) {
        try (c) {
            c.setSoTimeout(20000);
            InputStream in = c.getInputStream();
            OutputStream out = c.getOutputStream();
            byte[] buf = new byte[65536];
            for (int n; (n = in.read(buf)) > 0;)
                out.write(buf, 0, n);
        } catch (IOException e) {
            System.out.println("echo: " + e);
        }
    }

    static int client(String addr, int port) throws Exception {
        try (Socket s = new Socket(addr, port + 1)) {
            s.setSoTimeout(20000);
            OutputStream o = s.getOutputStream();
            InputStream in = s.getInputStream();
            Thread w = new Thread(() -> {
                try {
                    byte[] b = new byte[MB];
                    for (int k = 0; k < ECHO / MB; k++) {
                        for (int i = 0; i < MB; i++)
                            b[i] = pattern((long) k * MB + i);
                        o.write(b);
                    }
                    s.shutdownOutput();
                } catch (IOException e) {
                    System.out.println("writer: " + e);
                }
            });
            w.start();
            byte[] r = new byte[100003];
            long got = 0;
            for (int n; (n = in.read(r)) > 0; got += n)
                for (int i = 0; i < n; i++)
                    if (r[i] != pattern(got + i)) {
                        System.out.println("echo: byte " + (got + i) + " wrong");
                        return 2;
                    }
            w.join();
            if (got != ECHO) {
                System.out.println("echo: " + got + " of " + ECHO + " bytes");
                return 3;
            }
        }
        // the reader takes one echoed byte, then blocks in its next read
        Socket blocked = new Socket(addr, port + 1);
        String[] how = new String[1];
        java.util.concurrent.CountDownLatch first = new java.util.concurrent.CountDownLatch(1);
        Thread t = new Thread(() -> {
            try {
                InputStream in = blocked.getInputStream();
                if (in.read() == 'x')
                    first.countDown();
                how[0] = "read returned " + in.read();
            } catch (IOException e) {
                how[0] = "closed";
            }
        });
        t.start();
        blocked.getOutputStream().write('x');
        if (!first.await(10, java.util.concurrent.TimeUnit.SECONDS)) {
            System.out.println("the echo of one byte did not come");
            return 7;
        }
        blocked.close();
        t.join(10000);
        if (t.isAlive() || !"closed".equals(how[0])) {
            System.out.println("close of a socket being read: " + (t.isAlive() ? "reader still blocked" : how[0]));
            return 4;
        }
        try (Socket idle = new Socket()) {
            idle.setSoTimeout(300);
            idle.connect(new InetSocketAddress(addr, port + 1));
            long t0 = System.nanoTime();
            try {
                idle.getInputStream().read();
                System.out.println("SO_TIMEOUT: the read returned");
                return 5;
            } catch (SocketTimeoutException e) {
                long ms = (System.nanoTime() - t0) / 1000000;
                if (ms < 250 || ms > 5000) {
                    System.out.println("SO_TIMEOUT: timed out after " + ms + " ms, want 300");
                    return 6;
                }
            }
        }
        System.out.println("client: echo of " + ECHO + " bytes, close of a blocked reader, SO_TIMEOUT");
        return 0;
    }
}
