/* The launcher of the offline linuxdeploy stand-in (see linuxdeploy.sh):
 * the Tauri bundler runs "linuxdeploy-<arch>.AppImage" from its tool cache
 * and overwrites three bytes at offset 8 of it (an AppImage's magic), which
 * an ELF file carries in its padding but which would break a script's
 * first line. So this small program is the cached file, and it runs the
 * script saved beside it (same path + ".sh") with its arguments. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 4);
    if (n <= 0) {
        perror("linuxdeploy stand-in: /proc/self/exe");
        return 1;
    }
    self[n] = '\0';
    strcat(self, ".sh");
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return 1;
    args[0] = "sh";
    args[1] = self;
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    execv("/bin/sh", args);
    perror("linuxdeploy stand-in: /bin/sh");
    return 1;
}
