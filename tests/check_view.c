/* check_view.c - placeholder while the tests are written. */
#include <stdio.h>
int main(void) { puts("not written yet"); return 1; }
