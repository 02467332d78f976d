/* The floor of any command-line call: a dynamically linked C program
 * that does nothing. */
int
main(void)
{
	return (0);
}
