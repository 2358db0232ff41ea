/* The testbed's pod sandbox ("pause") process: holds the pod's namespaces, reaps orphaned children,
 * exits 0 on SIGINT/SIGTERM. Built static by testbed/svc_30_images.sh, run FROM scratch. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction sa_stop = {.sa_handler = stop};
  struct sigaction sa_reap = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  sigaction(SIGINT, &sa_stop, NULL);
  sigaction(SIGTERM, &sa_stop, NULL);
  sigaction(SIGCHLD, &sa_reap, NULL);
  for (;;) pause();
}
