/* placeholder: the demo is being written */
int main(void) { return 0; }
