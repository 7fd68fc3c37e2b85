/* The sandbox ("pause") process of every pod on the dev cluster's real node: it holds the pod's
 * namespaces, reaps the zombies it inherits as PID 1 and exits on SIGINT or SIGTERM. Built with
 * `gcc -static` by dev/node-images.sh, because no image can be pulled from the internet here. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {.sa_handler = stop};
  struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
}
