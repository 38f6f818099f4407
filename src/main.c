/* main.c — placeholder until the CLI lands in this series. */
#include <stdio.h>
int main(void) { fputs("penstock: not built yet\n", stderr); return 1; }
